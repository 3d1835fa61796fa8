"""The chart on the real apiserver: server-side apply, and RBAC proven enough and not more.

Enough: the operator, started with a token of the chart's own ServiceAccount (TokenRequest) and
the chart's leader-election flags and downward-API variables, takes the release's Lease and runs
a ServiceAction against the emulator to Succeeded, and `kubectl wait --for=condition=Ready` sees
it; two such replicas elect one leader, and the standby takes over when the leader stops. Not
more: `kubectl auth can-i --as=system:serviceaccount:...` denies everything else (any other
Lease, Leases in other namespaces). The bare apiserver has no controllers, so the chart's
Deployment is stored but never runs a pod; the operator runs here as a local process with the
ServiceAccount's identity instead.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import CHART, Helm, documents, hooks_of

from emrops.controlplane import ControlPlane
from fixtures.controlplane import require_helm
from fixtures.kubeconfig import write_token_kubeconfig
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, REGION, SECRET_NAME, service_action
from harness.operator import Operator
from harness.processes import STOP_TIMEOUT

pytestmark = pytest.mark.integration


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

    @property
    def operator(self) -> dict[str, Any]:
        """The operator container of the Deployment."""
        (deployment,) = [d for d in self.docs if d["kind"] == "Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return dict(container)

    @property
    def tenancy_policy(self) -> str:
        """The policy file the chart mounts into the pod (its ConfigMap's policy.yaml)."""
        (config,) = [
            d for d in self.docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-tenancy")
        ]
        return str(config["data"]["policy.yaml"])

    @property
    def leader_flags(self) -> list[str]:
        """The chart's leader-election flags, as the Deployment passes them."""
        return [a for a in self.operator["args"] if a.startswith("--leader-elect")]

    @property
    def lease(self) -> str:
        """The Lease the chart tells the operator to use (--leader-election-id)."""
        (name,) = [a.split("=", 1)[1] for a in self.leader_flags if a.startswith("--leader-election-id=")]
        return name

    def pod_env(self, pod: str) -> dict[str, str]:
        """What the downward API gives the chart's variables in a pod named ``pod``."""
        fields = {"metadata.name": pod, "metadata.namespace": self.namespace}
        return {
            e["name"]: fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            for e in self.operator["env"]
            if "fieldRef" in e.get("valueFrom", {})
        }


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
    # What `helm install` applies: the `helm test` hooks are created only by `helm test`.
    rendered = helm.template(chart_values, release=f"emrops-{suffix}", namespace=release_ns, skip_tests=True)
    result = _apply(cp, rendered)
    assert "serverside-applied" in result.stdout, result.stdout
    assert "would violate PodSecurity" not in result.stderr, result.stderr
    return Install(release_ns, watched, other, tuple(documents(rendered)))


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm"))


#: The namespaced release grants its team-a namespaces (team-a-<suffix>) the operator's identity on
#: the demo cluster, and nothing to team-b: the one line of values docs/security.md shows.
TEAM_A_GRANT = {
    "tenancy": {
        "operatorIdentity": [{"namespace": "team-a-*", "regions": [REGION], "clusters": [CLUSTER_ID]}]
    }
}


@pytest.fixture(scope="module")
def namespaced(control_plane: ControlPlane, helm: Helm) -> Install:
    return _install(control_plane, helm, namespaced=True, values=TEAM_A_GRANT)


@pytest.fixture(scope="module")
def cluster_wide(control_plane: ControlPlane, helm: Helm) -> Install:
    return _install(control_plane, helm, namespaced=False, values={"crds": {"install": False}})


def can_i(
    cp: ControlPlane, install: Install, verb: str, resource: str, namespace: str | None, *, name: str = ""
) -> bool:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    # "kind/status" means the status subresource here (kubectl would read it as an object name).
    kind, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    target = f"{kind}/{name}" if name else kind
    result = cp.kubectl("auth", "can-i", verb, target, *extra, f"--as={install.user}", *where, check=False)
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


def test_helm_test_hooks_pass_the_restricted_pod_security_standard(
    control_plane: ControlPlane, helm: Helm
) -> None:
    """The test Pod, Service and NetworkPolicy are valid objects the apiserver admits under
    `enforce=restricted` (a server-side dry run: the bare apiserver would never run the Pod)."""
    ns = control_plane.create_namespace(f"emrops-test-{_suffix()}")
    control_plane.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    docs = documents(helm.template({"networkPolicy": {"enabled": True}}, namespace=ns))
    hooks = hooks_of(docs)
    assert sorted(d["kind"] for d in hooks) == ["NetworkPolicy", "Pod", "Service"]
    result = control_plane.kubectl(
        "apply", "--dry-run=server", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in hooks)
    )
    assert result.stdout.count("(server dry run)") == 3, result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_helm_install_against_the_apiserver_shows_the_next_commands(
    control_plane: ControlPlane, helm: Helm
) -> None:
    """`helm install --dry-run=server`: the chart's kubeVersion admits the real apiserver, and
    NOTES show commands to run, not paths in this repository."""
    ns = control_plane.create_namespace(f"emrops-notes-{_suffix()}")
    result = helm.run(
        "install", "notes", str(CHART), "--namespace", ns, "--dry-run=server",
        "--kubeconfig", control_plane.kubeconfig, values={"crds": {"install": False}},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"helm test notes -n {ns}" in notes
    assert f"kubectl -n {ns} rollout status deployment/notes-emrops" in notes
    assert "kubectl explain serviceaction.spec" in notes
    for path in ("examples/", "docs/", "deploy/", ".md"):
        assert path not in notes, notes


def test_reapplying_is_a_no_op(control_plane: ControlPlane, helm: Helm, namespaced: Install) -> None:
    rendered = "\n---\n".join(yaml.safe_dump(d) for d in namespaced.docs)
    result = control_plane.kubectl(
        "diff", "--server-side", "--field-manager=emrops-chart-test", "-f", "-", input=rendered, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# What the operator must be able to do in a watched namespace (docs/install.md's RBAC table).
NEEDED = [
    ("get", "serviceactions.emrops.io"),
    ("list", "serviceactions.emrops.io"),
    ("watch", "serviceactions.emrops.io"),
    ("patch", "serviceactions.emrops.io"),
    ("get", "serviceactions.emrops.io/status"),
    ("patch", "serviceactions.emrops.io/status"),
    ("update", "serviceactions.emrops.io/status"),
    # A schedule's runs; runs past ttlSecondsAfterFinished or a schedule's history limits.
    ("create", "serviceactions.emrops.io"),
    ("delete", "serviceactions.emrops.io"),
    ("get", "serviceactionschedules.emrops.io"),
    ("list", "serviceactionschedules.emrops.io"),
    ("watch", "serviceactionschedules.emrops.io"),
    ("patch", "serviceactionschedules.emrops.io/status"),
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
    ("deletecollection", "serviceactions.emrops.io"),
    ("update", "serviceactions.emrops.io"),
    ("create", "serviceactionschedules.emrops.io"),
    ("update", "serviceactionschedules.emrops.io"),
    ("patch", "serviceactionschedules.emrops.io"),
    ("delete", "serviceactionschedules.emrops.io"),
    ("delete", "events"),
    # The tenancy policy is a mounted file: no right on ConfigMaps (docs/security.md).
    ("get", "configmaps"),
    ("list", "configmaps"),
    ("watch", "configmaps"),
    ("update", "configmaps"),
    ("create", "pods"),
    ("get", "pods"),
    ("create", "pods/exec"),
    ("create", "deployments.apps"),
    ("create", "serviceaccounts/token"),
    ("get", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "users"),
    # Leases: create, and get/update by name (below), nothing more.
    ("get", "leases.coordination.k8s.io"),
    ("update", "leases.coordination.k8s.io"),
    ("list", "leases.coordination.k8s.io"),
    ("watch", "leases.coordination.k8s.io"),
    ("patch", "leases.coordination.k8s.io"),
    ("delete", "leases.coordination.k8s.io"),
    ("deletecollection", "leases.coordination.k8s.io"),
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


LEASES = "leases.coordination.k8s.io"


def test_each_release_may_use_its_own_lease_only(
    control_plane: ControlPlane, namespaced: Install, cluster_wide: Install
) -> None:
    for install in (namespaced, cluster_wide):
        home, lease = install.namespace, install.lease

        def may(verb: str, namespace: str | None, name: str = "", who: Install = install) -> bool:
            return can_i(control_plane, who, verb, LEASES, namespace, name=name)

        assert may("create", home), "create cannot be limited by name: it needs the bare rule"
        assert may("get", home, lease) and may("update", home, lease)
        for verb in ("patch", "delete"):
            assert not may(verb, home, lease), f"{verb} its own Lease"
        for verb in ("get", "update"):
            assert not may(verb, home, f"{lease}-other"), f"{verb} another Lease in its namespace"
            assert not may(verb, home, "kube-controller-manager"), f"{verb} another Lease"
        for ns in (*install.watched, install.other, "default", "kube-system"):
            assert not may("create", ns), f"create Leases in {ns}"
            for verb in ("get", "update"):
                assert not may(verb, ns, lease), f"{verb} the Lease's name in {ns}"
        assert not may("create", None) and not may("list", None), "Leases cluster-wide"


def test_without_leader_election_no_lease_rights(control_plane: ControlPlane, helm: Helm) -> None:
    install = _install(control_plane, helm, namespaced=False, values={"leaderElection": {"enabled": False}})
    assert install.leader_flags == []
    assert not can_i(control_plane, install, "create", LEASES, install.namespace)
    assert not can_i(control_plane, install, "get", LEASES, install.namespace, name=install.service_account)


def test_no_wildcards_in_stored_rbac(
    control_plane: ControlPlane, namespaced: Install, cluster_wide: Install
) -> None:
    stored: list[dict[str, Any]] = []
    for ns in (*namespaced.watched, namespaced.namespace, cluster_wide.namespace):
        stored += json.loads(control_plane.kubectl("get", "roles", "-n", ns, "-o", "json").stdout)["items"]
    for doc in cluster_wide.docs:
        if doc["kind"] == "ClusterRole":
            stored.append(
                json.loads(
                    control_plane.kubectl("get", "clusterrole", doc["metadata"]["name"], "-o", "json").stdout
                )
            )
    assert len(stored) == 5, "a Role per watched namespace, a Lease Role per release, the ClusterRole"
    for role in stored:
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule.get("apiGroups", [])
    # As stored, the Lease Roles still name their release's Lease (nothing dropped or widened).
    for install in (namespaced, cluster_wide):
        (role,) = [r for r in stored if r["metadata"].get("namespace") == install.namespace]
        assert [(r["verbs"], r.get("resourceNames")) for r in role["rules"]] == [
            (["create"], None),
            (["get", "update"], [install.lease]),
        ]


# --- the operator with the ServiceAccount's token ------------------------------------------------


def _write_token_kubeconfig(cp: ControlPlane, install: Install, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (TokenRequest via kubectl)."""
    return write_token_kubeconfig(cp, install.namespace, install.service_account, path)


@dataclass
class Replica:
    """An operator process as one replica of the chart's Deployment would run it: the
    ServiceAccount's token, the chart's leader-election flags, the downward-API variables."""

    pod: str
    operator: Operator

    @property
    def health_port(self) -> int:
        return self.operator.health_port

    def output(self) -> str:
        return self.operator.log_text()

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError:
            return 0, {}


def _start_replica(
    install: Install, kubeconfig: Path, emr_endpoint: str, tmp_path: Path, pod: str, *, serve: bool = False
) -> Replica:
    """Start the replica and return at once: with ``serve`` (health and metrics ports), the tests
    watch ``/readyz`` on the way up themselves."""
    # The chart's policy, where the kubelet would mount it: the flag names the file in the pod.
    (flag,) = [a for a in install.operator["args"] if a.startswith("--tenancy-policy=")]
    policy = tmp_path / f"{pod}-{Path(flag.split('=', 1)[1]).name}"
    policy.write_text(install.tenancy_policy)
    extra = [*install.leader_flags, "--tenancy-policy", str(policy)]
    assert extra[0] == "--leader-elect=true", install.leader_flags
    # The operator's own identity, as credentials.existingSecret or RRSA would give it.
    env = install.pod_env(pod)
    assert env == {"POD_NAME": pod, "POD_NAMESPACE": install.namespace}
    env |= {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
    }
    operator = Operator(
        tmp_path,
        kubeconfig,
        emr_endpoint,
        name=pod,
        namespaces=install.watched,
        args=extra,
        env=env,
        serve=serve,
    )
    return Replica(pod, operator.start(ready=False))


def _lease(cp: ControlPlane, install: Install) -> dict[str, Any]:
    """The spec of the release's Lease (read as admin), or {} while there is none."""
    result = cp.kubectl("get", "lease", install.lease, "-n", install.namespace, "-o", "json", check=False)
    return dict(json.loads(result.stdout)["spec"]) if result.returncode == 0 else {}


def _wait(what: str, check: Callable[[], bool], timeout: float, *logs: Replica) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            tails = "\n".join(f"--- {r.pod}:\n{r.output()[-3000:]}" for r in logs)
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def operator_as_service_account(
    control_plane: ControlPlane, namespaced: Install, emulator: Any, tmp_path: Path
) -> Iterator[Replica]:
    kubeconfig = _write_token_kubeconfig(control_plane, namespaced, tmp_path / "sa.kubeconfig")
    replica = _start_replica(namespaced, kubeconfig, emulator.url, tmp_path, f"{namespaced.lease}-0")
    try:
        yield replica
    finally:
        replica.operator.stop()


def test_operator_runs_a_service_action_with_only_the_charts_rbac(
    control_plane: ControlPlane,
    namespaced: Install,
    emulator: Any,
    operator_as_service_account: Replica,
) -> None:
    replica = operator_as_service_account
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
    output = replica.output()
    assert waited.returncode == 0, f"{waited.stderr}\noperator log:\n{output[-6000:]}"
    assert replica.operator.exited() is None, f"the operator exited:\n{output[-6000:]}"

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

    # It led: the release's Lease, taken with the chart's rights, names this replica.
    lease = _lease(control_plane, namespaced)
    assert lease["holderIdentity"] == replica.pod, lease
    assert lease["leaseDurationSeconds"] == 15, "the chart's leaderElection.leaseDurationSeconds"
    assert f"took the lease {namespaced.namespace}/{namespaced.lease} as {replica.pod}" in output

    # The chart's policy: team-a (granted) may use the operator's identity, team-b may not.
    granted, refused = (
        service_action(name, description=f"tenancy {name}") for name in ("with-identity", "not-granted")
    )
    for obj in (granted, refused):
        del obj["spec"]["credentialsSecretRef"]
    control_plane.kubectl("apply", "-n", team, "-f", "-", input=json.dumps(granted))
    control_plane.kubectl("apply", "-n", namespaced.watched[1], "-f", "-", input=json.dumps(refused))
    for name, ns, wanted in (
        ("with-identity", team, "Ready"),
        ("not-granted", namespaced.watched[1], "Stalled"),
    ):
        waited = control_plane.kubectl(
            "wait",
            f"--for=condition={wanted}",
            f"svcact/{name}",
            "-n",
            ns,
            "--timeout=120s",
            check=False,
            timeout=180,
        )
        assert waited.returncode == 0, f"{name}: {waited.stderr}\n{replica.output()[-6000:]}"
    stalled = json.loads(
        control_plane.kubectl(
            "get", "svcact", "not-granted", "-n", namespaced.watched[1], "-o", "json"
        ).stdout
    )["status"]
    assert stalled["phase"] == "Failed" and "TenancyDenied" in json.dumps(stalled["conditions"]), stalled
    runs = [c for c in emulator.calls() if c["action"] == "RunApplicationAction"]
    assert len(runs) == 2, "the Secret's run and the granted identity's run; nothing for team-b"

    output = replica.output()
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


# No ServiceAction reaches these operators: nothing calls EMR (a closed local port).
NO_EMR = "http://127.0.0.1:9"
READY_LEADER = (200, {"status": "ok", "role": "leader"})
READY_STANDBY = (200, {"status": "ok", "role": "standby"})


@pytest.fixture(scope="module")
def two_replicas(control_plane: ControlPlane, helm: Helm) -> Install:
    return _install(
        control_plane, helm, namespaced=True, values={"replicaCount": 2, "crds": {"install": False}}
    )


def test_two_replicas_elect_one_leader_and_hand_over_with_only_the_charts_rbac(
    control_plane: ControlPlane, two_replicas: Install, tmp_path: Path
) -> None:
    """Two replicas as the chart runs them: one leads, the other is a ready standby; when the
    leader stops (SIGTERM, as a rolling update or a drain does) it releases the Lease as it exits
    and the standby leads within a retry period or two of that, not a lease duration."""
    install = two_replicas
    (pdb,) = [d for d in install.docs if d["kind"] == "PodDisruptionBudget"]
    control_plane.kubectl("get", "poddisruptionbudget", pdb["metadata"]["name"], "-n", install.namespace)
    (retry,) = [
        float(a.split("=", 1)[1])
        for a in install.leader_flags
        if a.startswith("--leader-elect-retry-period=")
    ]
    kubeconfig = _write_token_kubeconfig(control_plane, install, tmp_path / "sa.kubeconfig")

    def holder() -> str:
        return str(_lease(control_plane, install).get("holderIdentity") or "")

    def start(pod: str) -> Replica:
        replica = _start_replica(install, kubeconfig, NO_EMR, tmp_path, pod, serve=True)
        replicas.append(replica)
        return replica

    replicas: list[Replica] = []
    try:
        first = start(f"{install.lease}-a")
        _wait("the first replica to lead", lambda: holder() == first.pod, 60, first)
        second = start(f"{install.lease}-b")
        _wait("the second replica to stand by, ready", lambda: second.readyz() == READY_STANDBY, 60, second)
        _wait("the leader to be ready", lambda: first.readyz() == READY_LEADER, 60, first)
        assert holder() == first.pod, "the standby took a held Lease"

        rc, _ = first.operator.terminate(STOP_TIMEOUT)
        assert rc == 0, first.output()[-3000:]
        # Released on the way out (update of its own Lease): the standby need not wait it out.
        assert f"released the lease {install.namespace}/{install.lease}" in first.output()
        assert holder() != first.pod, "the leader exited still holding the Lease"
        took = _wait("the standby to take the Lease", lambda: holder() == second.pod, 30, second)
        assert took <= 2 * retry + 2, f"a released Lease took {took:.1f}s to change hands"
        _wait("the new leader to be ready", lambda: second.readyz() == READY_LEADER, 60, second)
        for replica in replicas:
            assert "forbidden" not in replica.output().lower(), replica.output()[-3000:]
    finally:
        for replica in replicas:  # no graceful stop needed (it takes seconds): the namespace is the test's
            replica.operator.kill()


def test_helm_test_pod_passes_against_the_operator(
    control_plane: ControlPlane, helm: Helm, namespaced: Install, emulator: Any, tmp_path: Path
) -> None:
    """The `helm test` Pod's check, run here against a real operator with the chart's identity:
    it waits for /readyz (the watch established with only the chart's RBAC), then /healthz."""
    kubeconfig = _write_token_kubeconfig(control_plane, namespaced, tmp_path / "sa.kubeconfig")
    replica = _start_replica(
        namespaced, kubeconfig, emulator.url, tmp_path, f"{namespaced.lease}-t", serve=True
    )
    try:
        docs = documents(helm.template(namespace=namespaced.namespace))
        (pod,) = [d for d in hooks_of(docs) if d["kind"] == "Pod"]
        (check,) = pod["spec"]["containers"]
        env = {e["name"]: e["value"] for e in check["env"]}
        # What Kubernetes gives the Pod for the test Service (created before it): its address.
        service_host = env["TEST_SERVICE"].upper().replace("-", "_") + "_SERVICE_HOST"
        env |= {
            service_host: "127.0.0.1",
            "TEST_PORT": str(replica.health_port),
            "TEST_TIMEOUT_SECONDS": "60",
        }
        result = subprocess.run(
            [sys.executable, *check["command"][1:]],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        output = replica.output()
        assert result.returncode == 0, f"{result.stdout}{result.stderr}\noperator log:\n{output[-4000:]}"
        assert "/readyz: 200" in result.stdout and "/healthz: 200" in result.stdout
    finally:
        replica.operator.stop()
