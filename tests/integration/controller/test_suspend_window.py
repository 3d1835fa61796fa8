"""spec.suspend (a plan, then an approval) and notBefore/notAfter windows, end to end.

The real apiserver, the emulator and `emrops run`: a suspended ServiceAction gets its plan in
status from the emulator's listings and no RunApplicationAction; setting suspend to false makes
exactly one; a window that has passed ends the run with no call at all (also for a finished object
deleted and re-created, the GitOps case); a window that opens later holds the run until then. The
gated examples (test_actions.py leaves them out) run here, approved and with their window moved.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from emrops.api.status import format_time
from harness.calls import RUN_ACTION, call_action
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, EXAMPLES, TASKS, component_scope, marker, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, phase, summarize

pytestmark = pytest.mark.integration

NODEMANAGERS = CORES + TASKS


@pytest.fixture(scope="module", autouse=True)
def operator(kube: Kube, operator_factory: OperatorFactory) -> None:
    kube.create_secret()
    operator_factory()


def rfc3339(moment: datetime) -> str:
    return format_time(moment)


def approve(kube: Kube, name: str) -> None:
    kube.kubectl(
        "patch", f"serviceactions.emrops.io/{name}", "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )


def calls_for(emulator: Emulator, name: str, action: str) -> list[dict[str, Any]]:
    """``action`` calls the object made: RunApplicationAction by its tag; reads by time only."""
    return [
        c
        for c in emulator.calls()
        if call_action(c) == action and (action != RUN_ACTION or marker(name) in json.dumps(c.get("params")))
    ]


def test_suspended_plan_then_approval_then_exactly_one_call(kube: Kube, module_emulator: Emulator) -> None:
    name = "suspended-nodemanagers"
    # One targeted node not Running: the plan lists its instance as abnormal.
    module_emulator.set_node(CORES[2], abnormal=False, state="Stopped")
    try:
        kube.create(
            tagged_action(
                name,
                "restart",
                component_scope("YARN", "NodeManager"),
                rollingExecute=True,
                batchSize=2,
                interval=30,
                suspend=True,
            )
        )
        objs = kube.wait_until("the plan", lambda o: "plan" in (o.get(name, {}).get("status") or {}))
    finally:
        module_emulator.set_node(CORES[2], abnormal=False, state="Running")
    status = objs[name]["status"]
    plan = status["plan"]
    assert status["phase"] == "Suspended", summarize(objs[name])
    assert condition(status, "Ready")["reason"] == "AwaitingApproval"
    assert condition(status, "Reconciling")["status"] == "False"
    assert condition(status, "Stalled")["status"] == "False"
    assert plan["instanceCount"] == len(NODEMANAGERS) == 6
    assert (plan["batchCount"], plan["batchSize"], plan["interval"]) == (3, 2, 30)
    assert plan["executeStrategy"] == "FAILED_BLOCK"
    assert sorted(i["nodeId"] for i in plan["instances"]) == sorted(NODEMANAGERS)
    assert sorted(i["batch"] for i in plan["instances"]) == [1, 1, 2, 2, 3, 3]
    assert plan["abnormalCount"] == 1
    assert [(i["nodeId"], i["nodeState"]) for i in plan["abnormalInstances"]] == [(CORES[2], "Stopped")]
    assert plan["estimatedSeconds"] == 3 * 120 + 2 * 30
    assert "6 instances in 3 batches" in status["message"]

    table = kube.kubectl("get", f"serviceactions.emrops.io/{name}").stdout.splitlines()
    assert table[1].split()[4] == "Suspended", table
    time.sleep(3)  # a suspended run stays so: no call, whatever the operator's timers
    assert calls_for(module_emulator, name, RUN_ACTION) == []
    assert phase(kube.get(name)) == "Suspended"

    approve(kube, name)
    done = kube.wait_phase([name], timeout=120)[name]
    st = done["status"]
    assert st["phase"] == "Succeeded", summarize(done)
    ok = module_emulator.ok_runs(name)
    assert len(ok) == 1 and len(calls_for(module_emulator, name, RUN_ACTION)) == 1
    assert st["operationId"] == ok[0]["operation_id"]
    assert st["approvedAt"] and st["observedGeneration"] == done["metadata"]["generation"] == 2
    assert st["plan"] == plan  # what was approved stays on record


def test_a_window_that_has_passed_ends_the_run_without_any_call(
    kube: Kube, module_emulator: Emulator
) -> None:
    name = "window-passed"
    now = datetime.now(UTC)
    kube.create(
        tagged_action(
            name,
            "restart",
            component_scope("HIVE", "HiveServer2"),
            notBefore=rfc3339(now - timedelta(hours=2)),
            notAfter=rfc3339(now - timedelta(hours=1)),
        )
    )
    obj = kube.wait_phase([name], timeout=60)[name]
    st = obj["status"]
    assert st["phase"] == "Failed", summarize(obj)
    stalled = condition(st, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "WindowExpired"
    assert "nothing was sent to EMR" in stalled["message"]
    assert calls_for(module_emulator, name, RUN_ACTION) == []
    assert "operationId" not in st and not st.get("attempts")


def test_a_run_waits_for_not_before_then_runs(kube: Kube, module_emulator: Emulator) -> None:
    name = "window-later"
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    kube.create(
        tagged_action(
            name,
            "restart",
            component_scope("SPARK", "SparkHistoryServer"),
            notBefore=rfc3339(opens),
            notAfter=rfc3339(opens + timedelta(hours=1)),
            activeDeadlineSeconds=60,  # counted from notBefore: the wait does not use it up
        )
    )
    objs = kube.wait_phase([name], phases={"Scheduled"}, timeout=30)
    st = objs[name]["status"]
    assert condition(st, "Ready")["reason"] == "WaitingForWindow"
    assert condition(st, "Reconciling")["status"] == "False"
    assert rfc3339(opens) in st["message"]
    assert calls_for(module_emulator, name, RUN_ACTION) == []

    done = kube.wait_phase([name], timeout=120)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    (call,) = module_emulator.ok_runs(name)
    assert call["time"] >= opens.timestamp()


def test_the_gitops_guard_a_recreated_object_past_its_window_does_nothing(
    kube: Kube, module_emulator: Emulator
) -> None:
    """Run once inside its window; deleted and re-created (as Argo CD or Flux would) afterwards:
    the copy ends WindowExpired, and EMR got one call in all."""
    name = "gitops-recreated"
    closes = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    manifest = tagged_action(
        name, "restart", component_scope("HIVE", "HiveMetastore"), notAfter=rfc3339(closes)
    )
    kube.create(copy.deepcopy(manifest))
    first = kube.wait_phase([name], timeout=60)[name]
    assert first["status"]["phase"] == "Succeeded", summarize(first)
    kube.kubectl("delete", f"serviceactions.emrops.io/{name}")
    while datetime.now(UTC) < closes + timedelta(seconds=1):
        time.sleep(0.5)

    kube.create(copy.deepcopy(manifest))
    again = kube.wait_phase([name], timeout=60)[name]
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    assert again["status"]["phase"] == "Failed", summarize(again)
    assert condition(again, "Stalled")["reason"] == "WindowExpired"
    assert len(calls_for(module_emulator, name, RUN_ACTION)) == 1


def example(file: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / file).read_text())
    name = f"ex-{doc['metadata']['name']}"[:63]
    doc["metadata"] = {"name": name}
    doc["spec"]["description"] = f"{doc['spec'].get('description', '')} {marker(name)}".strip()
    return doc


def test_the_suspended_example_plans_and_runs_once_approved(kube: Kube, module_emulator: Emulator) -> None:
    doc = example("suspended-rolling-restart.yaml")
    name = doc["metadata"]["name"]
    kube.create(doc)
    objs = kube.wait_until("the example's plan", lambda o: "plan" in (o.get(name, {}).get("status") or {}))
    assert phase(objs[name]) == "Suspended" and objs[name]["status"]["plan"]["instanceCount"] == 6
    assert module_emulator.ok_runs(name) == []
    approve(kube, name)
    done = kube.wait_phase([name], timeout=120)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    assert len(module_emulator.ok_runs(name)) == 1


def test_the_window_example_runs_in_its_window(kube: Kube, module_emulator: Emulator) -> None:
    doc = example("restart-in-maintenance-window.yaml")
    name = doc["metadata"]["name"]
    # The example's window, moved to start in a few seconds (same length).
    spec = doc["spec"]
    length = datetime.fromisoformat(spec["notAfter"]) - datetime.fromisoformat(spec["notBefore"])
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    spec.update(notBefore=rfc3339(opens), notAfter=rfc3339(opens + length))
    kube.create(doc)
    kube.wait_phase([name], phases={"Scheduled"}, timeout=30)
    done = kube.wait_phase([name], timeout=120)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    (call,) = module_emulator.ok_runs(name)
    assert call["time"] >= opens.timestamp()


def test_not_after_ends_a_run_queued_behind_another(kube: Kube, module_emulator: Emulator) -> None:
    """A run waiting in the cluster's queue past its notAfter ends WindowExpired, never called."""
    ahead, behind = "zk-rolling-slow", "zk-queued-window"
    # Three batches 2000 (emulated) seconds apart: some 40 s of real time at the tests' time scale.
    kube.create(
        tagged_action(
            ahead,
            "restart",
            component_scope("ZOOKEEPER", "ZooKeeper"),
            rollingExecute=True,
            batchSize=1,
            interval=2000,
        )
    )
    kube.wait_phase([ahead], phases={"Running"}, timeout=60)
    closes = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    kube.create(
        tagged_action(behind, "restart", component_scope("ZOOKEEPER", "ZooKeeper"), notAfter=rfc3339(closes))
    )
    queued = kube.wait_phase([behind], phases={"Queued"}, timeout=30)[behind]
    assert any(w.endswith(ahead) for w in queued["status"]["waitingFor"]), summarize(queued)
    ended = kube.wait_phase([behind], timeout=60)[behind]
    assert ended["status"]["phase"] == "Failed", summarize(ended)
    assert condition(ended, "Stalled")["reason"] == "WindowExpired"
    assert phase(kube.get(ahead)) == "Running"  # it ended while the other still ran
    assert calls_for(module_emulator, behind, RUN_ACTION) == []
    done = kube.wait_phase([ahead], timeout=120)[ahead]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
