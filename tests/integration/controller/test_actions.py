"""Every example and every action x scope combination reaches Succeeded, and says what EMR said.

All objects are created at once in one namespace against one operator; overlapping targets are
serialized by the operator's per-cluster queue (stop before start on the same services, by
creation order), so the module also exercises the queue under a realistic mix.
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.tenancy import grant, write_policy
from harness.calls import call_param
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import (
    CORES,
    EXAMPLES,
    MASTER,
    SECRET_NAME,
    TASKS,
    app_scope,
    component_scope,
    instance_scope,
    marker,
    tagged_action,
)
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration

# action -> (application scope, component scope, instance scope) targets on the default cluster.
# stop comes before start on the same services, so the queue's creation order leaves them started.
MATRIX: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "stop": (
        app_scope("SPARK"),
        component_scope("HIVE", "HiveServer2"),
        instance_scope("ZOOKEEPER", "ZooKeeper", CORES[1]),
    ),
    "start": (
        app_scope("SPARK"),
        component_scope("HIVE", "HiveServer2"),
        instance_scope("ZOOKEEPER", "ZooKeeper", CORES[1]),
    ),
    "restart": (
        app_scope("HDFS"),
        component_scope("YARN", "NodeManager"),
        instance_scope("HDFS", "DataNode", CORES[0]),
    ),
    "config": (
        app_scope("ZOOKEEPER"),
        component_scope("HIVE", "HiveMetastore"),
        instance_scope("YARN", "NodeManager", TASKS[0]),
    ),
    "refresh_queues": (
        app_scope("YARN"),
        component_scope("YARN", "ResourceManager"),
        instance_scope("YARN", "ResourceManager", MASTER),
    ),
    "refresh_labels": (
        app_scope("YARN"),
        component_scope("YARN", "ResourceManager"),
        instance_scope("YARN", "ResourceManager", MASTER),
    ),
}
SCOPES = ("APPLICATION", "COMPONENT", "COMPONENT_INSTANCE")
COMBINATIONS = [(action, scope) for action in MATRIX for scope in SCOPES]


def rfc3339_ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000


def matrix_name(action: str, scope: str) -> str:
    return f"m-{action.replace('_', '-')}-{scope.lower().replace('_', '-')}"


def load_examples() -> list[dict[str, Any]]:
    """Every ServiceAction document in examples/ (other kinds are ignored)."""
    found = []
    for path in sorted([*EXAMPLES.glob("**/*.yaml"), *EXAMPLES.glob("**/*.yml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "ServiceAction":
                found.append(doc)
    return found


#: Examples that wait for a person (spec.suspend) or a time (notBefore/notAfter) never reach
#: Succeeded on their own: test_suspend_window.py runs those, approving them and moving windows.
GATED = ("suspend", "notBefore", "notAfter")
EXAMPLE_DOCS = [d for d in load_examples() if not any(key in d["spec"] for key in GATED)]


def example_object(doc: dict[str, Any]) -> dict[str, Any]:
    """The example as shipped, renamed for this namespace and tagged in its description."""
    obj = copy.deepcopy(doc)
    name = f"ex-{obj['metadata']['name']}"[:63]
    obj["metadata"] = {"name": name, "labels": obj["metadata"].get("labels", {})}
    spec = obj["spec"]
    spec["description"] = f"{spec.get('description', '')} {marker(name)}".strip()
    return obj


@pytest.fixture(scope="module")
def finished(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Create the matrix and the examples at once, and wait until every one has finished."""
    kube.create_secret()
    # Examples without credentialsSecretRef use the operator's default chain: give it the demo keys,
    # and grant this namespace the demo cluster in the tenancy policy (none may use it otherwise).
    policy = write_policy(workdir / "tenancy.yaml", [grant(kube.namespace)])
    operator_factory(
        "--tenancy-policy",
        str(policy),
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "emrops-demo",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "emrops-demo-secret",
        },
    )
    objs = [tagged_action(matrix_name(a, s), a, MATRIX[a][SCOPES.index(s)]) for a, s in COMBINATIONS]
    objs += [example_object(d) for d in EXAMPLE_DOCS]
    kube.create(*objs)
    return kube.wait_phase([o["metadata"]["name"] for o in objs], timeout=240)


def assert_succeeded_as_emulator_says(name: str, obj: dict[str, Any], emu: Emulator, kube: Kube) -> None:
    st = obj.get("status") or {}
    assert st.get("phase") == "Succeeded", summarize(obj)
    assert condition(obj, "Ready").get("status") == "True", summarize(obj)
    assert condition(obj, "Stalled").get("status") == "False", summarize(obj)
    assert condition(obj, "Reconciling").get("status") == "False", summarize(obj)
    generation = obj["metadata"]["generation"]
    assert st.get("observedGeneration") == generation
    for cond in st["conditions"]:
        assert cond.get("observedGeneration") == generation, cond

    ok = emu.ok_runs(name)
    assert len(ok) == 1, f"{name}: expected exactly one accepted RunApplicationAction, got {ok}"
    assert st.get("operationId") == ok[0]["operation_id"]
    assert st.get("requestId") == ok[0]["request_id"]
    assert (st.get("abnInstances") or []) == emu.abn_instances(st["operationId"])

    op = emu.operations()[st["operationId"]]
    assert op["OperationState"] == "COMPLETED"
    operation = st.get("operation") or {}
    assert operation.get("state") == "COMPLETED"
    # Times are EMR's (Unix ms), shown as RFC3339: equal to the second.
    assert abs(rfc3339_ms(operation["startTime"]) - op["StartTime"]) < 1000, (operation, op)
    assert abs(rfc3339_ms(operation["endTime"]) - op["EndTime"]) < 1000, (operation, op)

    # The contract users script against: kubectl's own wait on the kstatus condition.
    done = kube.kubectl("wait", "--for=condition=Ready", f"svcact/{name}", "--timeout=60s", check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("action", "scope"), COMBINATIONS, ids=[f"{a}-{s}" for a, s in COMBINATIONS])
def test_action_and_scope_succeeds(
    action: str, scope: str, finished: dict[str, dict[str, Any]], module_emulator: Emulator, kube: Kube
) -> None:
    name = matrix_name(action, scope)
    assert_succeeded_as_emulator_says(name, finished[name], module_emulator, kube)
    # What EMR received is what the spec asked for.
    call = module_emulator.ok_runs(name)[0]
    assert call_param(call, "ActionName") == action
    assert call_param(call, "ComponentInstanceSelector.RunActionScope") == scope


def test_abnormal_instances_are_reported(
    finished: dict[str, dict[str, Any]], module_emulator: Emulator, kube: Kube
) -> None:
    """With unhealthy nodes among the targets, abnInstances lists exactly what EMR answered.

    The emulator (like EMR) fails the restart on those nodes, so the run ends Failed with the
    operation's NodeFailure reason.
    """
    name = "m-abnormal-datanodes"
    for node in (CORES[3], CORES[1]):
        module_emulator.set_node(node)
    try:
        kube.create(tagged_action(name, "restart", component_scope("HDFS", "DataNode")))
        obj = kube.wait_phase([name], timeout=120)[name]
        st = obj["status"]
        expected = module_emulator.abn_instances(st["operationId"])
    finally:
        for node in (CORES[3], CORES[1]):
            module_emulator.set_node(node, abnormal=False)
    assert expected == [
        {"nodeId": CORES[1], "nodeName": "core1-2"},
        {"nodeId": CORES[3], "nodeName": "core1-4"},
    ]
    assert st.get("abnInstances") == expected, summarize(obj)
    ok = module_emulator.ok_runs(name)
    assert len(ok) == 1
    assert st["operationId"] == ok[0]["operation_id"]
    assert st["requestId"] == ok[0]["request_id"]

    assert st["phase"] == "Failed", summarize(obj)
    op = module_emulator.operations()[st["operationId"]]
    assert op["OperationState"] == "FAILED"
    reason = (st.get("operation") or {}).get("stateChangeReason") or {}
    assert reason.get("code") == op["StateChangeReason"]["Code"] == "NodeFailure", st.get("operation")
    stalled = condition(obj, "Stalled")
    assert stalled.get("status") == "True"
    assert "core1-2" in stalled.get("message", "") or "NodeFailure" in stalled.get("message", ""), stalled


def test_examples_exist() -> None:
    assert EXAMPLE_DOCS, "examples/ holds no ServiceAction"


@pytest.mark.parametrize("doc", EXAMPLE_DOCS, ids=[d["metadata"]["name"] for d in EXAMPLE_DOCS])
def test_example_succeeds(
    doc: dict[str, Any], finished: dict[str, dict[str, Any]], module_emulator: Emulator, kube: Kube
) -> None:
    name = example_object(doc)["metadata"]["name"]
    assert_succeeded_as_emulator_says(name, finished[name], module_emulator, kube)


def test_secret_name_is_the_demo_one() -> None:
    """The examples and these tests agree on the demo Secret's name (docs/getting-started.md)."""
    refs = {(d["spec"].get("credentialsSecretRef") or {}).get("name") for d in EXAMPLE_DOCS}
    assert refs <= {SECRET_NAME, None}
