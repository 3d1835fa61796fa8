"""What holds a cluster's queue, and what must not (issue 9, holes 3, 4 and 9).

- A run whose object vanished without the operator seeing a DELETED event (its label was removed
  under ``--label-selector``, then it was deleted) stops being followed, and no longer holds the
  queue: an overlapping object created next runs.
- A run that ended Unknown holds the cluster (its EMR operation may be running) until a person
  sets ``emrops.io/acknowledged-at``; the run stays Unknown and says which value it handled.
- A run that cannot start because its credentials Secret is missing does not hold the cluster:
  another tenant's overlapping run goes on.

Each test uses its own component instances, so a test that failed (and left an EMR operation
running) cannot make the next one collide. The one fault (a dropped answer, ``count: 1``) is
injected while nothing else runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.calls import GET_OPERATION, RUN_ACTION, call_action, call_outcome, call_param
from harness.emulator import Emulator, wait_calls_stop
from harness.kube import Kube
from harness.objects import (
    CORES,
    TASKS,
    component_scope,
    instance_scope,
    rolling_datanodes,
    tagged_action,
    with_labels,
)
from harness.operator import OperatorFactory
from harness.status import ACKNOWLEDGED_AT, condition, phase, summarize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def credentials(kube: Kube) -> None:
    kube.create_secret()


def settled_phase(name: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    """A ``wait_until`` check: ``name`` left Pending (it was queued, or went further)."""
    return lambda objs: phase(objs.get(name, {})) not in (None, "Pending")


def waits_for(obj: dict[str, Any], other: str) -> bool:
    return any(
        w == other or w.endswith(f"/{other}") for w in (obj.get("status") or {}).get("waitingFor") or []
    )


# --- hole 3: an object that vanished without a DELETED event ----------------------------------


def test_a_deleted_object_unseen_under_a_label_selector_stops_and_frees_the_queue(
    kube: Kube, module_emulator: Emulator, operators: OperatorFactory
) -> None:
    operators("--label-selector", "team=a")
    # Four DataNodes, one at a time, 200 s apart: about 6 s at the emulator's time scale.
    long_restart = rolling_datanodes("vh-a", interval=200)
    kube.create(with_labels(long_restart, team="a"))
    objs = kube.wait_until(
        "vh-a to run",
        lambda o: phase(o.get("vh-a", {})) == "Running" and bool(o["vh-a"]["status"].get("operationId")),
        timeout=60,
        interval=0.2,
    )
    operation_id = objs["vh-a"]["status"]["operationId"]

    # The operator stops receiving its events (label removed), then the object goes away.
    kube.kubectl("label", "serviceactions.emrops.io/vh-a", "team-")
    kube.kubectl("delete", "serviceactions.emrops.io/vh-a", "--wait=true")
    state = module_emulator.operations()[operation_id]["OperationState"]
    assert state == "IN_PROGRESS", f"the test needs vh-a deleted while its operation runs, not {state}"

    # Its polling stops: by the time its operation ends (a few seconds) plus a poll or two.
    polls = wait_calls_stop(
        module_emulator,
        f"GetOperation for {operation_id} of the deleted vh-a",
        lambda c: call_action(c) == GET_OPERATION and call_param(c, "OperationId") == operation_id,
        quiet=3,
        timeout=25,
    )
    assert len(polls) < 60, f"{len(polls)} GetOperation calls for one operation of about 6 s"

    # And it no longer holds the queue: an overlapping labelled object runs.
    kube.create(
        with_labels(tagged_action("vh-b", "restart", instance_scope("HDFS", "DataNode", CORES[0])), team="a")
    )
    objs = kube.wait_until("vh-b to leave Pending", settled_phase("vh-b"), timeout=30, interval=0.2)
    assert not waits_for(objs["vh-b"], "vh-a"), f"vh-b waits for the deleted vh-a: {summarize(objs['vh-b'])}"
    obj = kube.wait_phase(["vh-b"], timeout=60)["vh-b"]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    assert [call_outcome(c) for c in module_emulator.ok_runs("vh-b")] == ["OK"]


# --- hole 4: an Unknown run holds the cluster until acknowledged ------------------------------


def test_an_unknown_run_holds_overlapping_runs_until_acknowledged(
    kube: Kube, module_emulator: Emulator, operators: OperatorFactory
) -> None:
    operators()
    target = instance_scope("YARN", "NodeManager", TASKS[0])
    # The first RunApplicationAction is applied by EMR but its answer is lost: Unknown.
    module_emulator.faults([{"action": RUN_ACTION, "drop_after_apply": True, "count": 1}])
    kube.create(tagged_action("uk-a", "restart", target))
    kube.wait_phase(["uk-a"], ["Unknown"], timeout=60)
    assert len(module_emulator.run_calls("uk-a")) == 1

    kube.create(tagged_action("uk-b", "restart", target))
    objs = kube.wait_until("uk-b to leave Pending", settled_phase("uk-b"), timeout=30, interval=0.2)
    assert phase(objs["uk-b"]) == "Queued", (
        f"uk-b must wait for the Unknown uk-a (whose operation may be running): {summarize(objs['uk-b'])}"
    )
    assert waits_for(objs["uk-b"], "uk-a"), summarize(objs["uk-b"])
    kube.hold("uk-b Queued behind uk-a", lambda o: phase(o["uk-b"]) == "Queued", seconds=3)
    assert module_emulator.run_calls("uk-b") == []

    # A person checked EMR and releases the cluster; uk-a itself is not run again.
    value = "2030-01-02T03:04:05Z"
    kube.annotate("uk-a", ACKNOWLEDGED_AT, value)
    obj = kube.wait_phase(["uk-b"], timeout=60)["uk-b"]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    assert [call_outcome(c) for c in module_emulator.run_calls("uk-b")] == ["OK"]
    assert obj["status"]["operationId"] == module_emulator.ok_runs("uk-b")[0]["operation_id"]

    objs = kube.wait_until(
        "uk-a to echo the acknowledgement",
        lambda o: (o["uk-a"].get("status") or {}).get("acknowledgedAt") == value,
        timeout=15,
    )
    a = objs["uk-a"]
    assert a["status"]["phase"] == "Unknown", summarize(a)
    assert len(module_emulator.run_calls("uk-a")) == 1, "acknowledging must not run uk-a again"


# --- hole 9: missing credentials do not hold the cluster --------------------------------------


@pytest.fixture
def other_namespace(kube: Kube) -> Iterator[Kube]:
    """A second namespace (another tenant) with the demo credentials Secret; sorts after ours."""
    name = f"{kube.namespace}-t2"
    kube.kubectl("create", "namespace", name, namespaced=False)
    other = Kube(kube.cp, name)
    other.create_secret()
    yield other
    kube.kubectl("delete", "namespace", name, "--wait=false", namespaced=False, check=False)


def test_a_run_without_credentials_does_not_hold_another_tenants_run(
    kube: Kube, other_namespace: Kube, module_emulator: Emulator, operators: OperatorFactory
) -> None:
    operators("-n", other_namespace.namespace)
    target = component_scope("HIVE", "HiveMetastore")
    kube.create(tagged_action("cm-a", "restart", target, credentialsSecretRef={"name": "no-such-secret"}))
    kube.wait_until(
        "cm-a to report CredentialsMissing",
        lambda o: condition(o.get("cm-a", {}), "Ready").get("reason") == "CredentialsMissing",
        timeout=30,
        interval=0.2,
    )

    # Another tenant's overlapping run, created later (so it is younger): it must not wait.
    other_namespace.create(tagged_action("cm-b", "restart", target))
    objs = other_namespace.wait_until(
        "cm-b to leave Pending", settled_phase("cm-b"), timeout=30, interval=0.2
    )
    assert phase(objs["cm-b"]) != "Queued", (
        f"cm-b is queued behind a run that cannot start: {summarize(objs['cm-b'])}"
    )
    obj = other_namespace.wait_phase(["cm-b"], timeout=60)["cm-b"]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    assert [call_outcome(c) for c in module_emulator.run_calls("cm-b")] == ["OK"]

    a = kube.get("cm-a")
    assert phase(a) == "Pending", summarize(a)
    assert condition(a, "Ready").get("reason") == "CredentialsMissing", summarize(a)
    assert module_emulator.run_calls("cm-a") == []
