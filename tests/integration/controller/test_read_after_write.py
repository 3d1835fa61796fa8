"""GetOperation may not find an operation right after RunApplicationAction created it (issue 9, hole 6).

EMR's reads lag its writes: for a moment after acceptance GetOperation can answer
ResourceNotFound for the new operation. Within a grace after the call was accepted that is lag,
not loss: the operator keeps polling and follows the run to its end, and never calls again.
The fault (the first two GetOperation calls answer ResourceNotFound) is global to this module's
emulator, so this module holds one object.
"""

from __future__ import annotations

import pytest

from harness.calls import GET_OPERATION, call_outcome
from harness.emulator import Emulator, get_operation_calls
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

NAME = "lag-restart"


def test_operation_not_found_right_after_acceptance_is_retried(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    module_emulator.faults(
        [{"action": GET_OPERATION, "code": "ResourceNotFound", "count": 2, "detail": "OperationId (lagging)"}]
    )
    kube.create_secret()
    operator_factory()
    kube.create(tagged_action(NAME, "restart", instance_scope("HDFS", "DataNode", CORES[0])))

    obj = kube.wait_phase([NAME], timeout=60)[NAME]
    st = obj["status"]
    assert st["phase"] == "Succeeded", summarize(obj)
    assert [call_outcome(c) for c in module_emulator.run_calls(NAME)] == ["OK"]
    operation_id = module_emulator.ok_runs(NAME)[0]["operation_id"]
    assert st["operationId"] == operation_id
    polls = [call_outcome(c) for c in get_operation_calls(module_emulator, operation_id)]
    assert polls[:2] == ["ResourceNotFound"] * 2 and polls[-1] == "OK", polls
