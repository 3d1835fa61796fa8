"""SIGKILL the operator at random moments during 30 submissions: nothing is submitted twice.

The operator is killed (no chance to clean up) at random times while 30 restarts are being
submitted and followed, and started again each time. Whatever the timing, every object must
finish and EMR must have accepted at most one RunApplicationAction per object.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from harness.calls import RUN_ACTION
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import INSTANCES, instance_scope, tagged_action
from harness.operator import Operator, OperatorFactory
from harness.status import TERMINAL_PHASES, condition, phase, summarize

pytestmark = pytest.mark.integration

COUNT = 30
MAX_KILLS = 12

# Every component instance of the default cluster, round-robin: some objects share an instance
# and must queue behind each other, most can run at once.
TARGETS = [(app, comp, node) for (app, comp), nodes in INSTANCES.items() for node in nodes]
OBJECTS = [
    tagged_action(f"k-{i:02d}", "restart", instance_scope(*TARGETS[i % len(TARGETS)])) for i in range(COUNT)
]
NAMES = [o["metadata"]["name"] for o in OBJECTS]


def killed_in_flight(op: Operator, namespace: str, name: str) -> bool:
    """Whether some operator process logged the intent for ``name`` and was SIGKILLed before
    logging the answer (the operator logs "ns/name: Submitting intent ..." just before the
    conditional intent write, "ns/name: Submitting: ..." after it, and "Submitted" or the
    refusal once the call returned). Logging before the write matters: a kill between the write
    and a later log line would otherwise leave an Unknown run with no trace in the log."""
    ref = f"{namespace}/{name}: "
    for life in op.log_path.read_text(errors="replace").split("===== start #")[1:]:
        if "===== stopped with SIGKILL" not in life:
            continue
        lines = [ln for ln in life.splitlines() if ref in ln]
        submitting = [i for i, ln in enumerate(lines) if f"{ref}Submitting" in ln]
        if submitting and len(lines) == submitting[-1] + 1:
            return True
    return False


def test_sigkill_during_submissions_never_submits_twice(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory, rng: random.Random
) -> None:
    # Widen the window between intent and answer (every RunApplicationAction takes 0.3 s real
    # time) and spread the submissions out (3 calls/s), so kills land in every stage of a run.
    module_emulator.faults([{"action": RUN_ACTION, "latency": 0.3}])
    kube.create_secret()
    # A short call timeout keeps the in-flight grace (timeout + 10 s) short for the restarts.
    op = operator_factory("--rate-limit-qps", "3", "--rate-limit-burst", "2", "--emr-call-timeout", "5")
    kube.create(*OBJECTS)

    kills = 0
    while kills < MAX_KILLS:
        # Startup takes a second or two; kill anywhere from during startup to well into the work.
        time.sleep(rng.uniform(0.5, 3.5))
        objs = kube.all()
        if all(phase(objs.get(n, {})) in TERMINAL_PHASES for n in NAMES):
            break
        op.kill()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.5))
        op.start()

    # Runs left Unknown by a kill keep the overlapping ones queued until a person acknowledges
    # them (their operation may be running): acknowledge them as that person would.
    final = kube.wait_phase_acknowledging(NAMES, timeout=240)
    assert kills > 0, "everything finished before the first kill: the test proved nothing"

    unknown: list[str] = []
    for name in NAMES:
        obj: dict[str, Any] = final[name]
        st = obj["status"]
        ok = module_emulator.ok_runs(name)
        assert len(ok) <= 1, f"{name} was submitted {len(ok)} times"
        if st["phase"] == "Succeeded":
            assert len(ok) == 1, summarize(obj)
            assert st["operationId"] == ok[0]["operation_id"]
            assert condition(obj, "Ready").get("status") == "True"
        else:
            # Unknown is only legitimate when a kill fell between the intent (phase Submitting
            # written, conditioned on the resourceVersion) and the recording of the answer: the
            # restarted operator then finds Submitting without an operationId and cannot know
            # whether EMR received the call. EMR may have accepted it (1 OK call: the kill came
            # after the request was sent) or not (0: the kill came before), never more than once.
            assert st["phase"] == "Unknown", summarize(obj)
            assert not st.get("operationId"), "an operation id was recorded, so the outcome was known"
            assert condition(obj, "Stalled").get("status") == "True"
            assert killed_in_flight(op, kube.namespace, name), (
                f"{name} is Unknown but no operator incarnation was killed between its intent and "
                f"the answer; operator log:\n{op.tail(40)}"
            )
            unknown.append(name)

    # One kill may catch several calls in flight, so Unknown is not bounded by the kill count.
    print(f"kills={kills} unknown={unknown} starts={op.starts}")
