"""A connection dropped after EMR applied the action: Unknown, Stalled, and no second call.

RunApplicationAction has no client token, so a call whose answer was lost may have started the
action: calling again could restart production services twice. The operator must stop in
Unknown and wait for a human; the re-run annotation is that human's "go ahead, once".
"""

from __future__ import annotations

import time

import pytest

from harness.calls import RUN_ACTION, call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration

NAME = "amb-restart"
RERUN = "emrops.io/run-requested-at"


def test_dropped_answer_ends_unknown_then_rerun_calls_once(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    module_emulator.faults([{"action": RUN_ACTION, "drop_after_apply": True, "count": 1}])
    kube.create_secret()
    operator_factory()
    kube.create(tagged_action(NAME, "restart", instance_scope("HDFS", "DataNode", CORES[2])))

    obj = kube.wait_phase([NAME], ["Unknown"], timeout=90)[NAME]
    st = obj["status"]
    stalled = condition(obj, "Stalled")
    assert stalled.get("status") == "True", summarize(obj)
    assert stalled.get("message"), "Stalled must tell the user what to check"
    assert condition(obj, "Ready").get("status") == "False"
    assert not st.get("operationId"), "no answer was received, so no operation id can be known"

    # EMR did apply it: the emulator holds an operation the operator never heard of.
    assert len(module_emulator.run_calls(NAME)) == 1
    assert len(module_emulator.operations()) == 1

    # Several poll cycles (--poll-max-seconds 1) later, still exactly one call and still Unknown.
    time.sleep(6)
    assert len(module_emulator.run_calls(NAME)) == 1, "the operator resubmitted an ambiguous call"
    assert kube.status(NAME)["phase"] == "Unknown"

    # The user checked EMR and asks for one more run.
    value = "2030-01-02T03:04:05Z"
    kube.annotate(NAME, RERUN, value)
    # The old phase is Unknown too: wait for the echo of this value with a finished phase.
    obj = kube.wait_until(
        "the re-run to finish",
        lambda objs: (
            (objs[NAME].get("status") or {}).get("runRequestedAt") == value
            and objs[NAME]["status"].get("phase") in ("Succeeded", "Failed")
        ),
        timeout=90,
    )[NAME]
    st = obj["status"]
    assert st["phase"] == "Succeeded", summarize(obj)
    assert condition(obj, "Ready").get("status") == "True"
    assert condition(obj, "Stalled").get("status") in (None, "False")

    calls = module_emulator.run_calls(NAME)
    assert len(calls) == 2, [call_outcome(c) for c in calls]
    assert call_outcome(calls[1]) == "OK"
    assert st["operationId"] == calls[1]["operation_id"]

    # The history keeps the ambiguous run.
    history = st.get("history") or []
    assert any(h.get("phase") == "Unknown" for h in history), history

    # And nothing more happens afterwards.
    time.sleep(4)
    assert len(module_emulator.run_calls(NAME)) == 2
    assert kube.status(NAME)["runRequestedAt"] == value
