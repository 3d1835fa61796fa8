"""The ServiceAction CRD against a real kube-apiserver: examples, validation, status, columns.

Every rejection is checked at apply time (server-side apply with strict field validation), and
its message must name the offending field, because that message is all a user sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from emrops.controlplane import ControlPlane
from harness.objects import CLUSTER_ID, CORES, SECRET_NAME, service_action

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "crds" / "emrops.io_serviceactions.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SERVICE_ACTION_EXAMPLES = [p for p in EXAMPLES if yaml.safe_load(p.read_text())["kind"] == "ServiceAction"]

Manifest = dict[str, Any]


#: The rolling options every object here carries, so the rolling-only rules are exercised too.
ROLLING: Manifest = {
    "rollingExecute": True,
    "batchSize": 1,
    "interval": 10,
    "executeStrategy": "FAILED_BLOCK",
}


def rolling_restart(name: str = "sa", **spec: Any) -> Manifest:
    """A valid ServiceAction (a rolling restart of the DataNodes), with ``spec`` keys replaced."""
    return service_action(name, **{**ROLLING, **spec})


def apply(cp: ControlPlane, namespace: str, manifest: Manifest, check: bool = False) -> Any:
    return cp.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "--field-manager=test",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(manifest),
        check=check,
    )


def get(cp: ControlPlane, namespace: str, name: str) -> Manifest:
    result: Manifest = json.loads(cp.kubectl("get", "svcact", name, "-n", namespace, "-o", "json").stdout)
    return result


# --- invalid ServiceActions -------------------------------------------------------------------

Mutation = Callable[[Manifest], None]


def drop(*path: str) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def put(*path: str | int, value: Any) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        node: Any = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def selector(**fields: Any) -> Mutation:
    return put("spec", "componentInstanceSelector", value=fields)


def not_rolling(**spec: Any) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        for key in ("rollingExecute", "interval", "batchSize", "executeStrategy"):
            manifest["spec"].pop(key, None)
        manifest["spec"].update(spec)

    return mutate


def window(not_before: str, not_after: str) -> Mutation:
    def mutate(manifest: Manifest) -> None:
        manifest["spec"].update(notBefore=not_before, notAfter=not_after)

    return mutate


YARN_NM = {"applicationName": "YARN", "componentName": "NodeManager"}
SEL = "spec.componentInstanceSelector"

INVALID = [
    pytest.param(drop("spec", "clusterId"), ["spec.clusterId", "Required value"], id="missing-clusterId"),
    pytest.param(drop("spec", "regionId"), ["spec.regionId", "Required value"], id="missing-regionId"),
    pytest.param(drop("spec", "actionName"), ["spec.actionName", "Required value"], id="missing-actionName"),
    pytest.param(drop("spec", "componentInstanceSelector"), [SEL, "Required value"], id="missing-selector"),
    pytest.param(
        put("spec", "actionName", value="reboot"),
        ["spec.actionName", "Unsupported value", '"restart"'],
        id="unknown-actionName",
    ),
    pytest.param(
        put("spec", "actionName", value="Restart"),
        ["spec.actionName", "Unsupported value"],
        id="actionName-case",
    ),
    pytest.param(
        put("spec", "componentInstanceSelector", "runActionScope", value="CLUSTER"),
        [f"{SEL}.runActionScope", "Unsupported value"],
        id="bad-runActionScope",
    ),
    pytest.param(
        selector(components=[{"applicationName": "HDFS", "componentName": "DataNode"}]),
        [f"{SEL}.runActionScope", "Required value"],
        id="missing-runActionScope",
    ),
    pytest.param(
        selector(runActionScope="APPLICATION"),
        [f"{SEL}.applicationName", "required when runActionScope is APPLICATION"],
        id="application-without-applicationName",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT"),
        [f"{SEL}.components", "runActionScope is COMPONENT"],
        id="component-without-components",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT", components=[]),
        [f"{SEL}.components", "at least one component"],
        id="component-with-empty-components",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT_INSTANCE", components=[YARN_NM]),
        [f"{SEL}.componentInstances", "runActionScope is COMPONENT_INSTANCE", f"{SEL}.components: Forbidden"],
        id="instance-scope-without-instances",
    ),
    pytest.param(
        selector(runActionScope="APPLICATION", applicationName="YARN", components=[YARN_NM]),
        [f"{SEL}.components", "only allowed when runActionScope is COMPONENT", "ConflictParameters"],
        id="components-with-application-scope",
    ),
    pytest.param(
        selector(
            runActionScope="COMPONENT",
            components=[YARN_NM],
            componentInstances=[{**YARN_NM, "nodeId": "i-1"}],
        ),
        [f"{SEL}.componentInstances", "only allowed when runActionScope is COMPONENT_INSTANCE"],
        id="instances-with-component-scope",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT_INSTANCE", componentInstances=[]),
        [f"{SEL}.componentInstances", "at least one instance"],
        id="instance-scope-with-empty-instances",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT_INSTANCE", componentInstances=[YARN_NM]),
        [f"{SEL}.componentInstances[0].nodeId", "Required value"],
        id="instance-without-nodeId",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT_INSTANCE", componentInstances=[{**YARN_NM, "nodeId": "core1-1"}]),
        [f"{SEL}.componentInstances[0].nodeId", "should match"],
        id="nodeId-not-an-instance-id",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT", components=[{"applicationName": "HDFS"}]),
        [f"{SEL}.components[0].componentName", "Required value"],
        id="component-without-componentName",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT", components=[{"componentName": "DataNode"}]),
        [f"{SEL}.components[0].applicationName", "Required value"],
        id="component-without-applicationName",
    ),
    pytest.param(
        selector(runActionScope="COMPONENT", components=[YARN_NM] * 65),
        [f"{SEL}.components", "must have at most 64 items"],
        id="too-many-components",
    ),
    pytest.param(
        put("spec", "interval", value=-1),
        ["spec.interval", "greater than or equal to 0"],
        id="negative-interval",
    ),
    pytest.param(
        put("spec", "interval", value="10s"),
        ["spec.interval", "expected numeric"],
        id="interval-not-int",
    ),
    pytest.param(
        put("spec", "batchSize", value=0),
        ["spec.batchSize", "greater than or equal to 1"],
        id="batchSize-zero",
    ),
    pytest.param(
        not_rolling(interval=10),
        ["spec.interval", "only allowed with spec.rollingExecute: true"],
        id="interval-without-rollingExecute",
    ),
    pytest.param(
        not_rolling(rollingExecute=False, batchSize=2),
        ["spec.batchSize", "only allowed with spec.rollingExecute: true"],
        id="batchSize-with-rollingExecute-false",
    ),
    pytest.param(
        not_rolling(executeStrategy="FAILED_CONTINUE"),
        ["spec.executeStrategy", "only allowed with spec.rollingExecute: true"],
        id="executeStrategy-without-rollingExecute",
    ),
    pytest.param(
        put("spec", "executeStrategy", value="FAILED_RETRY"),
        ["spec.executeStrategy", "Unsupported value"],
        id="unknown-executeStrategy",
    ),
    pytest.param(
        put("spec", "description", value="x" * 257),
        ["spec.description", "256"],
        id="description-too-long",
    ),
    pytest.param(
        put("spec", "credentialsSecretRef", value={"name": "Bad_Name"}),
        ["spec.credentialsSecretRef.name", "must be a Secret name"],
        id="secret-name-invalid",
    ),
    pytest.param(
        put("spec", "credentialsSecretRef", value={}),
        ["spec.credentialsSecretRef.name", "Required value"],
        id="secret-ref-without-name",
    ),
    pytest.param(
        put("spec", "activeDeadlineSeconds", value=0),
        ["spec.activeDeadlineSeconds", "greater than or equal to 1"],
        id="activeDeadlineSeconds-zero",
    ),
    pytest.param(
        put("spec", "regionId", value="Hangzhou"), ["spec.regionId", "should match"], id="bad-regionId"
    ),
    pytest.param(
        put("spec", "clusterId", value="cluster 1"), ["spec.clusterId", "should match"], id="bad-clusterId"
    ),
    pytest.param(
        put("spec", "batchsize", value=1),
        ["spec.batchsize", "field not declared in schema"],
        id="unknown-spec-field",
    ),
    pytest.param(
        window("2027-01-10T04:00:00Z", "2027-01-10T02:00:00Z"),
        ["spec.notAfter", "spec.notAfter must be later than spec.notBefore"],
        id="window-backwards",
    ),
    pytest.param(
        window("2027-01-10T02:00:00Z", "2027-01-10T02:00:00Z"),
        ["spec.notAfter", "spec.notAfter must be later than spec.notBefore"],
        id="window-empty",
    ),
    pytest.param(
        put("spec", "notAfter", value="tomorrow"), ["spec.notAfter", "date-time"], id="notAfter-not-a-time"
    ),
    pytest.param(
        put("spec", "suspend", value="yes"), ["spec.suspend", "boolean"], id="suspend-not-a-boolean"
    ),
]


@pytest.fixture(scope="module")
def invalid_ns(control_plane: ControlPlane) -> str:
    return control_plane.create_namespace(prefix="t-invalid-")


@pytest.mark.integration
@pytest.mark.parametrize(("mutate", "expected"), INVALID)
def test_invalid_service_action_is_rejected_naming_the_field(
    control_plane: ControlPlane,
    invalid_ns: str,
    request: pytest.FixtureRequest,
    mutate: Mutation,
    expected: list[str],
) -> None:
    name = request.node.callspec.id.lower()
    manifest = rolling_restart(name)
    mutate(manifest)

    result = apply(control_plane, invalid_ns, manifest)

    assert result.returncode != 0, f"accepted: {json.dumps(manifest['spec'])}"
    for fragment in expected:
        assert fragment in result.stderr
    stored = control_plane.kubectl("get", "svcact", name, "-n", invalid_ns, check=False)
    assert "NotFound" in stored.stderr


@pytest.mark.integration
def test_the_valid_base_is_accepted(control_plane: ControlPlane, invalid_ns: str) -> None:
    """Guards the table above: every case must fail because of its mutation, not the base."""
    apply(control_plane, invalid_ns, rolling_restart("valid-base"), check=True)
    assert get(control_plane, invalid_ns, "valid-base")["spec"] == rolling_restart()["spec"]


@pytest.mark.integration
def test_unknown_field_is_rejected_by_create_with_strict_validation(
    control_plane: ControlPlane, invalid_ns: str
) -> None:
    """A typo must not be pruned away silently: ``batchsize`` would otherwise mean "no batches"."""
    manifest = rolling_restart("typo", batchsize=1)

    result = control_plane.kubectl(
        "create", "--validate=strict", "-n", invalid_ns, "-f", "-", input=json.dumps(manifest), check=False
    )

    assert result.returncode != 0
    assert 'unknown field "spec.batchsize"' in result.stderr


# --- immutability and re-run ------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"actionName": "stop"}, id="actionName"),
        pytest.param({"batchSize": 2}, id="batchSize"),
        pytest.param({"description": "added later"}, id="added-field"),
        pytest.param({"executeStrategy": None}, id="removed-field"),
        pytest.param({"notAfter": "2027-01-10T04:00:00Z"}, id="notAfter-added"),
        pytest.param({"credentialsSecretRef": {"name": "other-secret"}}, id="credentialsSecretRef"),
        pytest.param({"clusterId": "c-0000000000000001"}, id="clusterId"),
        pytest.param(
            {"componentInstanceSelector": {"runActionScope": "APPLICATION", "applicationName": "HDFS"}},
            id="componentInstanceSelector",
        ),
    ],
)
def test_spec_cannot_change_after_creation(
    control_plane: ControlPlane, namespace: str, change: dict[str, Any]
) -> None:
    apply(control_plane, namespace, rolling_restart("immutable"), check=True)
    changed = rolling_restart("immutable", **change)
    changed["spec"] = {k: v for k, v in changed["spec"].items() if v is not None}

    result = apply(control_plane, namespace, changed)

    assert result.returncode != 0
    assert "spec: Invalid value" in result.stderr
    assert "spec is immutable after creation" in result.stderr
    assert "emrops.io/run-requested-at" in result.stderr
    assert get(control_plane, namespace, "immutable")["spec"] == rolling_restart()["spec"]


@pytest.mark.integration
def test_suspend_may_go_from_true_to_false_only(control_plane: ControlPlane, namespace: str) -> None:
    apply(control_plane, namespace, rolling_restart("approve-me", suspend=True), check=True)

    # Another field changing along with the approval: refused, nothing changes.
    both = apply(control_plane, namespace, rolling_restart("approve-me", suspend=False, batchSize=2))
    assert both.returncode != 0 and "spec is immutable after creation" in both.stderr
    assert get(control_plane, namespace, "approve-me")["spec"]["suspend"] is True

    # The approval alone: accepted, and the generation moves (the operator records it).
    apply(control_plane, namespace, rolling_restart("approve-me", suspend=False), check=True)
    approved = get(control_plane, namespace, "approve-me")
    assert approved["spec"] == rolling_restart(suspend=False)["spec"]
    assert approved["metadata"]["generation"] == 2

    # Back to true: refused, naming the field and the rule.
    again = apply(control_plane, namespace, rolling_restart("approve-me", suspend=True))
    assert again.returncode != 0
    assert "spec.suspend" in again.stderr and "can only go from true to false" in again.stderr
    assert get(control_plane, namespace, "approve-me")["spec"]["suspend"] is False


@pytest.mark.integration
def test_an_object_created_without_suspend_cannot_be_suspended(
    control_plane: ControlPlane, namespace: str
) -> None:
    apply(control_plane, namespace, rolling_restart("never-suspended"), check=True)
    result = apply(control_plane, namespace, rolling_restart("never-suspended", suspend=True))
    assert result.returncode != 0 and "can only go from true to false" in result.stderr
    # suspend: false where it was absent changes nothing that matters: accepted.
    apply(control_plane, namespace, rolling_restart("never-suspended", suspend=False), check=True)


@pytest.mark.integration
def test_kubectl_explain_documents_suspend_and_the_window(control_plane: ControlPlane) -> None:
    for field, fragment in (
        ("suspend", "Setting it to false approves the run"),
        ("notBefore", "before which the run does not start"),
        ("notAfter", "WindowExpired"),
    ):
        out = control_plane.kubectl("explain", f"serviceactions.spec.{field}").stdout
        assert fragment in " ".join(out.split()), out
    plan = control_plane.kubectl("explain", "serviceactions.status.plan").stdout
    assert "estimatedSeconds" in plan and "abnormalCount" in plan


@pytest.mark.integration
def test_rerun_annotation_and_labels_can_change(control_plane: ControlPlane, namespace: str) -> None:
    apply(control_plane, namespace, rolling_restart("rerun"), check=True)

    control_plane.kubectl(
        "annotate", "svcact/rerun", "-n", namespace, "emrops.io/run-requested-at=2026-01-01T00:00:00Z"
    )
    control_plane.kubectl("label", "svcact/rerun", "-n", namespace, "team=storage")

    metadata = get(control_plane, namespace, "rerun")["metadata"]
    assert metadata["annotations"]["emrops.io/run-requested-at"] == "2026-01-01T00:00:00Z"
    assert metadata["labels"]["team"] == "storage"


# --- the examples -----------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("example", SERVICE_ACTION_EXAMPLES, ids=lambda p: p.stem)
def test_example_is_accepted_unchanged(control_plane: ControlPlane, namespace: str, example: Path) -> None:
    manifest = yaml.safe_load(example.read_text())
    control_plane.kubectl("apply", "--server-side", "--validate=strict", "-n", namespace, "-f", str(example))

    stored = get(control_plane, namespace, manifest["metadata"]["name"])

    # Nothing pruned, nothing defaulted: the object says exactly what the file says.
    assert stored["spec"] == manifest["spec"]


@pytest.mark.integration
def test_examples_folder_applies_and_lists_with_printer_columns(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl(
        "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", str(ROOT / "examples")
    )

    secret = json.loads(
        control_plane.kubectl("get", "secret", SECRET_NAME, "-n", namespace, "-o", "json").stdout
    )
    assert set(secret["data"]) == {"accessKeyId", "accessKeySecret"}

    table = control_plane.kubectl("get", "svcact", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "CLUSTER", "ACTION", "SCOPE", "PHASE", "OPERATION", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert set(rows) == {yaml.safe_load(p.read_text())["metadata"]["name"] for p in SERVICE_ACTION_EXAMPLES}
    assert rows["rolling-restart-hdfs-datanodes"][1:4] == [CLUSTER_ID, "restart", "COMPONENT"]
    assert rows["stop-spark"][1:4] == [CLUSTER_ID, "stop", "APPLICATION"]
    assert rows["start-task-nodemanagers"][1:4] == [CLUSTER_ID, "start", "COMPONENT_INSTANCE"]
    assert rows["refresh-yarn-queues"][1:4] == [CLUSTER_ID, "refresh_queues", "COMPONENT"]

    wide = control_plane.kubectl("get", "svcact", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["READY", "MESSAGE"]
    header = wide[0].split()
    assert header[header.index("AGE") + 1 : -2] == [
        "SUSPEND",
        "INSTANCES",
        "BATCHES",
        "ESTIMATE",
        "NOT-BEFORE",
        "NOT-AFTER",
    ]
    suspended = next(
        line.split() for line in wide[1:] if line.startswith("rolling-restart-nodemanagers-approved")
    )
    assert "true" in suspended


# --- status -----------------------------------------------------------------------------------

FULL_STATUS: Manifest = {
    "observedGeneration": 1,
    "phase": "Failed",
    "message": "operation op-1a2b failed: NodeFailure",
    "operationId": "op-1a2b",
    "requestId": "9E3A7161-EB7B-172B-8D18-FFB06BA30001",
    "abnInstances": [{"nodeId": CORES[0], "nodeName": "core1-1"}],
    "operation": {
        "state": "FAILED",
        "startTime": "2026-01-01T00:00:00Z",
        "endTime": "2026-01-01T00:05:00Z",
        "stateChangeReason": {"code": "NodeFailure", "message": "core1-1 did not start"},
    },
    "progress": {"total": 4, "done": 2, "failed": 1, "message": "batch 3/4"},
    "attempts": 2,
    "submittedAt": "2026-01-01T00:00:00Z",
    "finishedAt": "2026-01-01T00:05:00Z",
    "lastError": {
        "code": "ThrottlingException",
        "message": "The request was denied due to request throttling.",
        "requestId": "REQ-1",
        "httpStatus": 400,
        "time": "2026-01-01T00:00:01Z",
    },
    "runRequestedAt": "2026-01-01T00:00:00Z",
    "run": 2,
    "waitingFor": ["other-action"],
    "history": [
        {
            "run": 1,
            "runRequestedAt": "",
            "phase": "Succeeded",
            "operationId": "op-0001",
            "requestId": "REQ-0",
            "startTime": "2025-12-31T00:00:00Z",
            "endTime": "2025-12-31T00:01:00Z",
            "errorCode": "",
        }
    ],
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "OperationFailed",
            "message": "EMR reported NodeFailure",
            "lastTransitionTime": "2026-01-01T00:05:00Z",
            "observedGeneration": 1,
        },
        {
            "type": "Stalled",
            "status": "True",
            "reason": "OperationFailed",
            "message": "EMR reported NodeFailure",
            "lastTransitionTime": "2026-01-01T00:05:00Z",
            "observedGeneration": 1,
        },
    ],
    "kopf": {"progress": {"handler-a": {"retries": 1, "anything": {"nested": [1, "two"]}}}, "dummy": "x"},
}


@pytest.mark.integration
def test_every_status_field_survives_a_status_subresource_write(
    control_plane: ControlPlane, namespace: str
) -> None:
    apply(control_plane, namespace, rolling_restart("status"), check=True)

    control_plane.kubectl(
        "patch", "svcact/status", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": FULL_STATUS}),
    )  # fmt: skip

    stored = get(control_plane, namespace, "status")
    # Nothing pruned: the schema knows every field the controller writes, and kopf's own
    # bookkeeping under status.kopf keeps whatever shape kopf gives it.
    assert stored["status"] == FULL_STATUS
    assert stored["metadata"]["generation"] == 1

    table = control_plane.kubectl("get", "svcact", "status", "-n", namespace, "-o", "wide").stdout
    row = table.splitlines()[1].split()
    assert row[4:6] == ["Failed", "op-1a2b"]
    assert row[7] == "False"
    assert "NodeFailure" in table


@pytest.mark.integration
def test_status_is_only_written_through_the_subresource(control_plane: ControlPlane, namespace: str) -> None:
    manifest = rolling_restart("main-resource")
    manifest["status"] = {"phase": "Succeeded"}

    apply(control_plane, namespace, manifest, check=True)

    assert "status" not in get(control_plane, namespace, "main-resource")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "field"),
    [
        pytest.param({"phase": "Done"}, "status.phase", id="unknown-phase"),
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "Yes"}]}, "status.conditions[0].status", id="cond"
        ),
        pytest.param({"history": [{"run": i} for i in range(11)]}, "status.history", id="history-too-long"),
    ],
)
def test_invalid_status_is_rejected(
    control_plane: ControlPlane, namespace: str, status: Manifest, field: str
) -> None:
    apply(control_plane, namespace, rolling_restart("bad-status"), check=True)

    result = control_plane.kubectl(
        "patch", "svcact/bad-status", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}), check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert field in result.stderr


# --- the schema itself (no server needed) ----------------------------------------------------


def _properties(schema: Manifest, path: str = "") -> list[tuple[str, Manifest]]:
    found = []
    for name, sub in schema.get("properties", {}).items():
        found.append((f"{path}.{name}", sub))
        found += _properties(sub, f"{path}.{name}")
    if "items" in schema:
        found += _properties(schema["items"], f"{path}[]")
    return found


def test_every_schema_field_has_a_description() -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undocumented = [path for path, sub in _properties(schema) if not sub.get("description")]
    assert undocumented == [".metadata"]


def test_status_schema_names_every_contract_field() -> None:
    crd = yaml.safe_load(CRD_FILE.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    # The controller may add fields; the contract's must all be there, or they would be pruned.
    assert set(FULL_STATUS) <= set(status["properties"])
    assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True


def test_bounded_lists_and_strings_in_spec() -> None:
    """CEL cost estimates need bounds; unbounded lists or strings would fail the CRD at install."""
    crd = yaml.safe_load(CRD_FILE.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    unbounded = [
        path
        for path, sub in _properties(spec, "spec")
        if (sub.get("type") == "string" and "maxLength" not in sub and "enum" not in sub)
        or (sub.get("type") == "array" and "maxItems" not in sub)
    ]
    assert unbounded == []
