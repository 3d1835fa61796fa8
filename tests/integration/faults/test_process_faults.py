"""Processes dying mid-run: the operator (SIGKILL), the kube-apiserver, the emulator, one of two operators.

Each test ends with zero lost runs (every ServiceAction Succeeded, Failed, or Unknown with a
Stalled reason) and zero duplicate submissions (at most one RunApplicationAction EMR performed per
object, checked against the emulator's ``/_emulator/calls``). Small counts by default; larger with
``EMROPS_SOAK=1``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fault_checks import assert_no_duplicates, assert_no_lost_runs

from fixtures.suites import StartEmulator, StartOperator, count
from harness.calls import RUN_ACTION, call_action
from harness.emulator import Emulator, clusters_scenario, generated_cluster_id
from harness.kube import Kube, restart_apiserver
from harness.objects import DISJOINT_INSTANCES, service_action
from harness.processes import wait_for

pytestmark = pytest.mark.integration

#: Slow operations (a restart is 4 steps of 100 emulated seconds = 4 s at time scale 0.01), so
#: there is time to kill things while they run.
SLOW = 100.0


def actions(n: int, prefix: str, clusters: int) -> list[dict[str, Any]]:
    """``n`` ServiceActions over ``clusters`` generated clusters, never two on one instance."""
    out = []
    for i in range(n):
        app, component, node = DISJOINT_INSTANCES[(i // clusters) % len(DISJOINT_INSTANCES)]
        name = f"{prefix}-{i:03d}"
        instance = {"applicationName": app, "componentName": component, "nodeId": node}
        selector = {"runActionScope": "COMPONENT_INSTANCE", "componentInstances": [instance]}
        cluster = generated_cluster_id(i % clusters)
        out.append(
            service_action(
                name,
                clusterId=cluster,
                componentInstanceSelector=selector,
                description=name,
                credentialsSecretRef=None,
            )
        )
    return out


def names_of(manifests: list[dict[str, Any]]) -> list[str]:
    return [m["metadata"]["name"] for m in manifests]


def run_calls(emulator: Emulator) -> list[dict[str, Any]]:
    return [c for c in emulator.calls() if call_action(c) == RUN_ACTION]


def test_sigkill_during_submission(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    """Killed while RunApplicationAction calls are in flight: the restarted operator must not
    call again on its own. Objects caught mid-call end Unknown (EMR did act: the emulator
    completes the call after the client is gone); none is submitted twice."""
    n = count(4, 40)
    emulator = start_emulator(clusters_scenario(10, step_seconds=1))
    emulator.faults({"action": "RunApplicationAction", "latency": 3.0})
    op1 = start_operator(emulator)
    manifests = actions(n, "kill-submit", 10)
    kube.apply(*manifests)
    wait_for(lambda: len(run_calls(emulator)) >= max(1, n // 2), timeout=60, what="submissions in flight")
    op1.kill()
    emulator.faults({"faults": [], "replace": True})
    wait_for(
        lambda: all(c.get("operation_id") or c.get("outcome") != "OK" for c in run_calls(emulator)),
        timeout=30,
        what="in-flight calls to complete on the emulator",
    )
    start_operator(emulator, name="op2")
    kube.wait_phase(names_of(manifests), timeout=120)
    objects = assert_no_lost_runs(kube, names_of(manifests))
    assert_no_duplicates(emulator.calls(), objects)
    phases = {(o.get("status") or {}).get("phase") for o in objects.values()}
    assert "Unknown" in phases, "no object was caught mid-submission; the test did not test anything"


def test_sigkill_during_polling(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    """Killed while operations run: the restarted operator resumes polling the same operation ids."""
    n = count(4, 60)
    emulator = start_emulator(clusters_scenario(10, step_seconds=SLOW))
    op1 = start_operator(emulator)
    manifests = actions(n, "kill-poll", 10)
    kube.apply(*manifests)
    before = kube.wait_phase(names_of(manifests), frozenset({"Running"}), timeout=120)
    op_ids = {name: obj["status"]["operationId"] for name, obj in before.items()}
    op1.kill()
    submitted = len(run_calls(emulator))
    start_operator(emulator, name="op2")
    kube.wait_phase(names_of(manifests), timeout=180)
    objects = assert_no_lost_runs(kube, names_of(manifests))
    assert_no_duplicates(emulator.calls(), objects)
    assert len(run_calls(emulator)) == submitted, "the restarted operator submitted again"
    for name, obj in objects.items():
        assert obj["status"]["phase"] == "Succeeded", obj["status"]
        assert obj["status"]["operationId"] == op_ids[name]


def test_apiserver_restart_mid_run(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    """kube-apiserver stopped and started (same etcd and port) while operations run; then more
    objects are created to prove the operator's watch came back."""
    n = count(4, 40)
    emulator = start_emulator(clusters_scenario(10, step_seconds=SLOW))
    operator = start_operator(emulator)
    first = actions(n, "apiserver-a", 10)
    kube.apply(*first)
    kube.wait_phase(names_of(first), frozenset({"Running", "Succeeded"}), timeout=120)
    restart_apiserver(kube.cp, down_seconds=5)
    assert operator.running, "the operator died with the apiserver"
    second = [m for m in actions(2 * n, "apiserver-b", 10)][n:]
    kube.apply(*second)
    everything = names_of(first) + names_of(second)
    kube.wait_phase(everything, timeout=240)
    objects = assert_no_lost_runs(kube, everything)
    assert_no_duplicates(emulator.calls(), objects)
    assert all(o["status"]["phase"] == "Succeeded" for o in objects.values()), {
        k: o["status"].get("phase") for k, o in objects.items()
    }


def test_emulator_restart_mid_run(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    """EMR forgets running operations (the emulator is in memory; a restart loses them).

    GetOperation then answers ResourceNotFound for an operation the operator knows was accepted.
    Whether it ran is unknown, so the object must end Unknown or Failed with a message naming the
    problem, and nothing may be resubmitted to the new emulator on the operator's own initiative.
    """
    n = count(3, 30)
    emulator = start_emulator(clusters_scenario(10, step_seconds=SLOW))
    start_operator(emulator)
    manifests = actions(n, "emu-restart", 10)
    kube.apply(*manifests)
    kube.wait_phase(names_of(manifests), frozenset({"Running"}), timeout=120)
    first_calls = emulator.calls()
    emulator.restart()
    kube.wait_phase(names_of(manifests), timeout=180)
    objects = assert_no_lost_runs(kube, names_of(manifests))
    assert_no_duplicates(first_calls, objects)
    assert not run_calls(emulator), "the operator resubmitted to the restarted emulator"
    for obj in objects.values():
        status = obj["status"]
        assert status["phase"] in ("Unknown", "Failed"), status
        assert status.get("operationId"), status  # what was accepted stays on record


def test_two_operators_one_killed(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    """Two standalone operators race for every object (the conditional Submitting write decides);
    one is SIGKILLed mid-run; the survivor finishes the rest without a second submission.

    Which operator wins each intent is a race, so the killed one may hold every first-wave run
    (they end Unknown, never resubmitted). A second wave created after the kill is the survivor's
    alone: those must all succeed.
    """
    n = count(6, 60)
    emulator = start_emulator(clusters_scenario(10, step_seconds=5))
    emulator.faults({"action": "RunApplicationAction", "latency": 1.0})
    op_a = start_operator(emulator, name="op-a")
    start_operator(emulator, name="op-b")
    first = actions(n, "two-ops", 10)
    kube.apply(*first)
    wait_for(lambda: len(run_calls(emulator)) >= max(1, n // 3), timeout=60, what="first submissions")
    op_a.kill()
    # Different instances from the first wave (its objects use cluster offsets 0..n-1).
    second = [m for m in actions(n + 3, "two-ops", 10) if m not in first][:3]
    for manifest in second:
        renamed = manifest["metadata"]["name"].replace("two-ops", "after-kill")
        manifest["metadata"]["name"] = manifest["spec"]["description"] = renamed
    kube.apply(*second)
    names = names_of(first) + names_of(second)
    kube.wait_phase(names, timeout=180)
    objects = assert_no_lost_runs(kube, names)
    assert_no_duplicates(emulator.calls(), objects)
    for name in names_of(second):
        assert objects[name]["status"]["phase"] == "Succeeded", objects[name]["status"]
