"""The chart on the real apiserver: server-side apply, and RBAC proven enough and not more.

Enough: the operator, started with a token of the chart's own ServiceAccount (TokenRequest),
runs a ServiceAction against the emulator to Succeeded, and `kubectl wait --for=condition=Ready`
sees it. Not more: `kubectl auth can-i --as=system:serviceaccount:...` denies everything else.
The bare apiserver has no controllers, so the chart's Deployment is stored but never runs a pod;
the operator runs here as a local process with the ServiceAccount's identity instead.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import Helm, documents

from emrops.controlplane import ControlPlane
from fixtures.controlplane import require_helm
from fixtures.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, SECRET_NAME, service_action
from fixtures.operator import operator_command, operator_env, stop_process

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Install:
    """One release of the chart applied to the apiserver."""

    namespace: str  # the release namespace (ServiceAccount, Deployment)
    watched: tuple[str, ...]  # empty: all namespaces
    other: str  # a namespace the release must not reach when it watches some
    docs: tuple[dict[str, Any], ...]

    @property
    def service_account(self) -> str:
        (sa,) = [d for d in self.docs if d["kind"] == "ServiceAccount"]
        return str(sa["metadata"]["name"])

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def _suffix() -> str:
    return secrets.token_hex(3)


def _apply(cp: ControlPlane, rendered: str) -> subprocess.CompletedProcess[str]:
    return cp.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=emrops-chart-test",
        "-f",
        "-",
        input=rendered,
    )


def _install(
    cp: ControlPlane, helm: Helm, *, namespaced: bool, values: dict[str, Any] | None = None
) -> Install:
    suffix = _suffix()
    release_ns = cp.create_namespace(f"emrops-{suffix}")
    # The PodSecurity admission plugin warns about workloads that break the namespace's level.
    cp.kubectl("label", "namespace", release_ns, "pod-security.kubernetes.io/warn=restricted")
    watched = (
        tuple(cp.create_namespace(f"{team}-{suffix}") for team in ("team-a", "team-b")) if namespaced else ()
    )
    other = cp.create_namespace(f"other-{suffix}")
    chart_values: dict[str, Any] = {"networkPolicy": {"enabled": True}, **(values or {})}
    if watched:
        chart_values["watchNamespaces"] = list(watched)
    rendered = helm.template(chart_values, release=f"emrops-{suffix}", namespace=release_ns)
    result = _apply(cp, rendered)
    assert "serverside-applied" in result.stdout, result.stdout
    assert "would violate PodSecurity" not in result.stderr, result.stderr
    return Install(release_ns, watched, other, tuple(documents(rendered)))


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def namespaced(control_plane: ControlPlane, helm: Helm) -> Install:
    return _install(control_plane, helm, namespaced=True)


@pytest.fixture(scope="module")
def cluster_wide(control_plane: ControlPlane, helm: Helm) -> Install:
    return _install(control_plane, helm, namespaced=False, values={"crds": {"install": False}})


def can_i(cp: ControlPlane, install: Install, verb: str, resource: str, namespace: str | None) -> bool:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    # "kind/status" means the status subresource here (kubectl would read it as an object name).
    kind, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = cp.kubectl("auth", "can-i", verb, kind, *extra, f"--as={install.user}", *where, check=False)
    answer = result.stdout.strip()
    assert answer in {"yes", "no"}, result.stdout + result.stderr
    return answer == "yes"


def test_every_rendered_object_is_stored(control_plane: ControlPlane, namespaced: Install) -> None:
    for doc in namespaced.docs:
        ns = doc["metadata"].get("namespace")
        where = ["-n", ns] if ns else []
        kind = doc["kind"].lower() + (
            "." + doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
        )
        control_plane.kubectl("get", kind, doc["metadata"]["name"], *where)


def test_reapplying_is_a_no_op(control_plane: ControlPlane, helm: Helm, namespaced: Install) -> None:
    rendered = "\n---\n".join(yaml.safe_dump(d) for d in namespaced.docs)
    result = control_plane.kubectl(
        "diff", "--server-side", "--field-manager=emrops-chart-test", "-f", "-", input=rendered, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# What the operator must be able to do in a watched namespace (COMMON.md's RBAC list).
NEEDED = [
    ("get", "serviceactions.emrops.io"),
    ("list", "serviceactions.emrops.io"),
    ("watch", "serviceactions.emrops.io"),
    ("patch", "serviceactions.emrops.io"),
    ("get", "serviceactions.emrops.io/status"),
    ("patch", "serviceactions.emrops.io/status"),
    ("update", "serviceactions.emrops.io/status"),
    ("get", "secrets"),
    ("create", "events"),
    ("patch", "events"),
    ("create", "events.events.k8s.io"),
]

# What it must never be able to do, anywhere.
FORBIDDEN = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "secrets"),
    ("update", "secrets"),
    ("delete", "secrets"),
    ("delete", "serviceactions.emrops.io"),
    ("deletecollection", "serviceactions.emrops.io"),
    ("create", "serviceactions.emrops.io"),
    ("update", "serviceactions.emrops.io"),
    ("delete", "events"),
    ("get", "configmaps"),
    ("list", "configmaps"),
    ("create", "pods"),
    ("get", "pods"),
    ("create", "pods/exec"),
    ("create", "deployments.apps"),
    ("create", "serviceaccounts/token"),
    ("get", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
]


@pytest.mark.parametrize(("verb", "resource"), NEEDED)
def test_namespaced_release_can_do_what_it_needs_in_watched_namespaces(
    control_plane: ControlPlane, namespaced: Install, verb: str, resource: str
) -> None:
    for ns in namespaced.watched:
        assert can_i(control_plane, namespaced, verb, resource, ns), f"{verb} {resource} in {ns}"


@pytest.mark.parametrize(("verb", "resource"), NEEDED)
def test_namespaced_release_can_do_nothing_elsewhere(
    control_plane: ControlPlane, namespaced: Install, verb: str, resource: str
) -> None:
    for ns in (namespaced.other, namespaced.namespace, "default", "kube-system"):
        assert not can_i(control_plane, namespaced, verb, resource, ns), f"{verb} {resource} in {ns}"
    assert not can_i(control_plane, namespaced, verb, resource, None), f"{verb} {resource} cluster-wide"


@pytest.mark.parametrize(("verb", "resource"), FORBIDDEN)
def test_neither_release_can_do_more(
    control_plane: ControlPlane, namespaced: Install, cluster_wide: Install, verb: str, resource: str
) -> None:
    for install in (namespaced, cluster_wide):
        for ns in (*install.watched, install.namespace, install.other):
            assert not can_i(control_plane, install, verb, resource, ns), (
                f"{install.user}: {verb} {resource} in {ns}"
            )


@pytest.mark.parametrize(
    ("verb", "resource"),
    [
        ("get", "customresourcedefinitions.apiextensions.k8s.io"),
        ("list", "namespaces"),
        ("get", "nodes"),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ],
)
def test_neither_release_has_cluster_rights_beyond_its_kind(
    control_plane: ControlPlane, namespaced: Install, cluster_wide: Install, verb: str, resource: str
) -> None:
    for install in (namespaced, cluster_wide):
        assert not can_i(control_plane, install, verb, resource, None)


def test_cluster_wide_release_reaches_every_namespace(
    control_plane: ControlPlane, cluster_wide: Install
) -> None:
    for verb, resource in NEEDED:
        assert can_i(control_plane, cluster_wide, verb, resource, None), f"{verb} {resource} cluster-wide"
        assert can_i(control_plane, cluster_wide, verb, resource, cluster_wide.other)


def test_no_wildcards_in_stored_rbac(
    control_plane: ControlPlane, namespaced: Install, cluster_wide: Install
) -> None:
    stored: list[dict[str, Any]] = []
    for ns in namespaced.watched:
        stored += json.loads(control_plane.kubectl("get", "roles", "-n", ns, "-o", "json").stdout)["items"]
    for doc in cluster_wide.docs:
        if doc["kind"] == "ClusterRole":
            stored.append(
                json.loads(
                    control_plane.kubectl("get", "clusterrole", doc["metadata"]["name"], "-o", "json").stdout
                )
            )
    assert len(stored) == 3
    for role in stored:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule.get("apiGroups", [])


# --- the operator with the ServiceAccount's token ------------------------------------------------


def _write_token_kubeconfig(cp: ControlPlane, install: Install, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (TokenRequest via kubectl)."""
    token = cp.kubectl(
        "create", "token", install.service_account, "-n", install.namespace, "--duration=1h"
    ).stdout.strip()
    assert token.count(".") == 2, "expected a JWT"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": cp.server, "certificate-authority": str(cp.ca_file)}}
        ],
        "users": [{"name": install.service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": install.service_account}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture
def operator_as_service_account(
    control_plane: ControlPlane, namespaced: Install, emulator: Any, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    kubeconfig = _write_token_kubeconfig(control_plane, namespaced, tmp_path / "sa.kubeconfig")
    command = operator_command(emulator.url, namespaced.watched)
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=operator_env(kubeconfig), stdout=out, stderr=subprocess.STDOUT, cwd=REPO
        )
    try:
        yield process, log
    finally:
        stop_process(process)


def test_operator_runs_a_service_action_with_only_the_charts_rbac(
    control_plane: ControlPlane,
    namespaced: Install,
    emulator: Any,
    operator_as_service_account: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = operator_as_service_account
    team = namespaced.watched[0]
    control_plane.kubectl(
        "create", "secret", "generic", SECRET_NAME, "-n", team,
        f"--from-literal=accessKeyId={ACCESS_KEY_ID}", f"--from-literal=accessKeySecret={ACCESS_KEY_SECRET}",
    )  # fmt: skip
    action = service_action(
        "restart-datanodes", rollingExecute=True, batchSize=2, interval=1, description="chart RBAC end-to-end"
    )
    control_plane.kubectl("apply", "-n", team, "-f", "-", input=json.dumps(action))

    waited = control_plane.kubectl(
        "wait",
        "--for=condition=Ready",
        "svcact/restart-datanodes",
        "-n",
        team,
        "--timeout=120s",
        check=False,
        timeout=180,
    )
    output = log.read_text(errors="replace")
    assert waited.returncode == 0, f"{waited.stderr}\noperator log:\n{output[-6000:]}"
    assert process.poll() is None, f"the operator exited:\n{output[-6000:]}"

    obj = json.loads(
        control_plane.kubectl("get", "svcact", "restart-datanodes", "-n", team, "-o", "json").stdout
    )
    status = obj["status"]
    assert status["phase"] == "Succeeded"
    assert status["operationId"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    runs = [c for c in emulator.calls() if c["action"] == "RunApplicationAction"]
    assert len(runs) == 1 and runs[0]["operation_id"] == status["operationId"]

    # Not one request of the operator was refused.
    assert "forbidden" not in output.lower(), output[-6000:]
    # Events were posted with the chart's rights (kopf and emrops post them explicitly).
    deadline = time.monotonic() + 10
    while True:
        events = json.loads(control_plane.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
        if [
            e for e in events if e["involvedObject"].get("name") == "restart-datanodes"
        ] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [e for e in events if e["involvedObject"].get("name") == "restart-datanodes"]
