"""The InvokeEcmError bound counts only InvokeEcmError attempts (issue 9, hole 8).

RunApplicationAction is throttled twice, then refused with InvokeEcmError twice, then accepted.
With the default bound (3 attempts failing with a bounded-retry error) the run must go on to
Succeeded: the throttled attempts proved nothing was done and do not count against the bound.
The faults are global to this module's emulator, so this module holds one object.
"""

from __future__ import annotations

import pytest

from harness.calls import RUN_ACTION, call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

NAME = "bounded-restart"


def test_throttled_attempts_do_not_count_against_the_invoke_ecm_error_bound(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    module_emulator.faults(
        [
            {"action": RUN_ACTION, "code": "ThrottlingException", "count": 2},
            # Fires on the 3rd and 4th call (``after`` lets the two throttled ones through).
            {"action": RUN_ACTION, "code": "InvokeEcmError", "after": 2, "count": 2},
        ]
    )
    kube.create_secret()
    operator_factory()
    kube.create(tagged_action(NAME, "restart", instance_scope("HDFS", "DataNode", CORES[1])))

    obj = kube.wait_phase([NAME], timeout=90)[NAME]
    st = obj["status"]
    outcomes = [call_outcome(c) for c in module_emulator.run_calls(NAME)]
    assert st["phase"] == "Succeeded", f"{summarize(obj)}\ncalls: {outcomes}"
    assert outcomes == ["ThrottlingException"] * 2 + ["InvokeEcmError"] * 2 + ["OK"]
    assert st["operationId"] == module_emulator.ok_runs(NAME)[0]["operation_id"]
    assert st.get("attempts") == 5, summarize(obj)
    assert st.get("boundedErrors") == 2, st
