"""SIGTERM during a RunApplicationAction in flight: the answer is recorded, then the process exits
(issue 9, hole 12).

A routine rollout sends SIGTERM. Cancelling a call in flight would turn a known outcome into
Unknown (the intent is written, the answer never is). The operator must stop starting
submissions, let the one in flight finish and record its operationId (phase Running) within
``--shutdown-grace``, and exit 0; a new operator then follows the run to Succeeded without a
second call. The emulator makes the first RunApplicationAction take 3 s (a global fault, so this
module holds one object).
"""

from __future__ import annotations

import time

import pytest

from harness.calls import RUN_ACTION, call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

NAME = "term-restart"
GRACE = 20
LATENCY = 3.0


def test_sigterm_lets_the_submission_in_flight_land_then_exits(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    module_emulator.faults([{"action": RUN_ACTION, "latency": LATENCY, "count": 1}])
    kube.create_secret()
    op = operator_factory("--shutdown-grace", str(GRACE))
    kube.create(tagged_action(NAME, "restart", instance_scope("HDFS", "DataNode", CORES[3])))

    # The emulator logs a call as soon as it arrives: from then on it is in flight for 3 s.
    deadline = time.monotonic() + 60
    while not module_emulator.run_calls(NAME):
        assert op.running, f"the operator exited (rc={op.proc and op.proc.returncode}):\n{op.tail(20)}"
        assert time.monotonic() < deadline, f"no RunApplicationAction arrived: {summarize(kube.get(NAME))}"
        time.sleep(0.05)
    rc, took = op.terminate(timeout=GRACE + 10)
    assert rc == 0, f"exit code {rc} after {took:.1f}s (SIGKILLed after {GRACE + 10}s when None)"
    assert took < GRACE, f"the shutdown took {took:.1f}s, beyond --shutdown-grace {GRACE}"
    assert took >= LATENCY - 1, f"exited after {took:.1f}s: it did not wait for the call in flight"

    calls = module_emulator.run_calls(NAME)
    assert [call_outcome(c) for c in calls] == ["OK"] and calls[0]["operation_id"], calls
    st = kube.status(NAME)
    assert st.get("phase") == "Running" and st.get("operationId") == calls[0]["operation_id"], (
        f"the answer of the call in flight was not recorded before exit: {summarize(kube.get(NAME))}"
    )

    # A new operator (the rollout's new pod) follows the run to its end, without a second call.
    op.start()
    obj = kube.wait_phase([NAME], timeout=60)[NAME]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    assert obj["status"]["operationId"] == calls[0]["operation_id"]
    assert len(module_emulator.run_calls(NAME)) == 1
