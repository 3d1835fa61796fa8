"""The chart and the operator image on a real node, in the order a user meets them.

One release for the module (installed by the ``release`` fixture with ``helm install --wait``):
it becomes Ready, runs every example, survives an upgrade and a rollback, a deleted pod, the
loss of its leader with two replicas, is refused what its RBAC does not grant when it uses its
own token, and on uninstall leaves the CRD and the ServiceActions in place. The tests run in
this file's order and build on each other's state (the last one uninstalls).
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_release import EMULATOR_CLUSTER, EXAMPLES_NAMESPACE, Release, pod_token, wait_for
from tlsproxy import Emulator

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRD = "serviceactions.emrops.io"


def _apply(release: Release, namespace: str, *documents: dict[str, Any]) -> None:
    release.cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))


def _long_run(name: str, description: str) -> dict[str, Any]:
    """A rolling restart of the four DataNodes, 30 emulated seconds apart: ~20 s at the suite's time scale."""
    return {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": name},
        "spec": {
            "regionId": "cn-hangzhou",
            "clusterId": EMULATOR_CLUSTER,
            "actionName": "restart",
            "componentInstanceSelector": {
                "runActionScope": "COMPONENT",
                "components": [{"applicationName": "HDFS", "componentName": "DataNode"}],
            },
            "rollingExecute": True,
            "batchSize": 1,
            "interval": 30,
            "executeStrategy": "FAILED_BLOCK",
            "description": description,
            "credentialsSecretRef": {"name": "emrops-demo-credentials"},
        },
    }


def _submissions(emulator: Emulator, description: str) -> list[dict[str, Any]]:
    calls = emulator.handle.calls("RunApplicationAction")
    return [c for c in calls if c["params"].get("Description") == description and c["outcome"] == "OK"]


def _phase(release: Release, namespace: str, name: str) -> str:
    got = release.cluster.kubectl_json("get", "serviceaction", name, "-n", namespace)
    return str(got.get("status", {}).get("phase", ""))


def _namespace_with_credentials(release: Release, prefix: str) -> str:
    namespace = f"{prefix}-{secrets.token_hex(3)}"
    release.cluster.kubectl("create", "namespace", namespace)
    release.cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "credentials-secret.yaml"))
    return namespace


def _start_long_run(release: Release, emulator: Emulator, prefix: str) -> tuple[str, str, str]:
    """A long run submitted and in progress: (namespace, name, description)."""
    namespace = _namespace_with_credentials(release, prefix)
    description = f"e2e {prefix} {secrets.token_hex(4)}"
    _apply(release, namespace, _long_run("long-run", description))
    wait_for(
        "the run's submission to EMR",
        lambda: _submissions(emulator, description),
        timeout=60,
        explain=release.diagnostics,
    )
    assert _phase(release, namespace, "long-run") not in ("Succeeded", "Failed")
    return namespace, "long-run", description


def _wait_succeeded(release: Release, namespace: str, name: str, timeout: float = 120) -> None:
    result = release.cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        f"serviceaction/{name}",
        "-n",
        namespace,
        f"--timeout={timeout:.0f}s",
        check=False,
        timeout=timeout + 10,
    )
    assert result.returncode == 0, f"{name}: {result.stderr}\n{release.diagnostics()}"
    assert _phase(release, namespace, name) == "Succeeded"


# --- install ---------------------------------------------------------------------------------------


def test_install_waits_for_a_ready_operator(release: Release) -> None:
    deployment = release.deployment()
    assert deployment["status"].get("readyReplicas") == 1
    (pod,) = release.pods()
    release.cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        f"pod/{pod['metadata']['name']}",
        "-n",
        release.namespace,
        "--timeout=60s",
    )
    # The image really is the one imported, never pulled.
    (container,) = pod["spec"]["containers"]
    assert container["imagePullPolicy"] == "Never"
    assert release.lease_holder() == pod["metadata"]["name"]


def test_every_example_succeeds_through_the_pod(release: Release, emulator: Emulator) -> None:
    """Every example: those that wait for a person are approved as their comment says; those that
    wait for a time window in the future are seen waiting (Scheduled, no call to EMR)."""
    namespace = EXAMPLES_NAMESPACE
    release.cluster.kubectl("create", "namespace", namespace)
    documents = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    actions = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "ServiceAction"}
    later = {name for name, spec in actions.items() if spec.get("notBefore", "") > _now_rfc3339()}
    assert len(actions) - len(later) >= 4
    # Applied in one go, as a user would (`kubectl apply -f examples/`); those on the same
    # cluster queue behind each other.
    release.cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    for name, spec in actions.items():
        if spec.get("suspend"):
            wait_for(
                f"{name} to wait for approval",
                lambda name=name: _phase(release, namespace, name) == "Suspended",
                timeout=60,
            )
            release.cluster.kubectl(
                "patch",
                "serviceaction",
                name,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"spec":{"suspend":false}}',
            )
    for name in sorted(set(actions) - later):
        _wait_succeeded(release, namespace, name, timeout=240)
        operation = release.cluster.kubectl_json("get", "serviceaction", name, "-n", namespace)["status"][
            "operationId"
        ]
        # The operation the pod recorded is one the emulator started for exactly one call.
        started = [c for c in emulator.handle.calls("RunApplicationAction") if c["operation_id"] == operation]
        assert len(started) == 1, (name, started)
    for name in later:
        assert _phase(release, namespace, name) == "Scheduled"
        assert not _submissions(emulator, actions[name]["description"])


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --- upgrade and rollback ------------------------------------------------------------------------


def test_upgrade_with_a_values_change_then_rollback(release: Release) -> None:
    assert "--log-level=INFO" in release.operator_args()
    release.upgrade({"logging": {"level": "DEBUG"}})
    assert "--log-level=DEBUG" in release.operator_args()
    (pod,) = release.pods()
    assert release.deployment()["status"].get("updatedReplicas") == 1
    wait_for(
        "the new pod to log at DEBUG", lambda: '"DEBUG"' in release.logs(pod["metadata"]["name"]), timeout=60
    )

    history = json.loads(release.helm("history", release.name, "-o", "json"))
    release.rollback(history[0]["revision"])
    assert "--log-level=INFO" in release.operator_args()
    history = json.loads(release.helm("history", release.name, "-o", "json"))
    assert history[-1]["status"] == "deployed"
    assert "Rollback" in history[-1]["description"]
    wait_for("one ready replica after the rollback", lambda: len(release.pods()) == 1, timeout=60)


# --- a pod deleted in the middle of a run ------------------------------------------------------------


def test_a_pod_deleted_mid_run_is_replaced_and_the_new_pod_finishes_the_run(
    release: Release, emulator: Emulator
) -> None:
    namespace, name, description = _start_long_run(release, emulator, "deleted")
    (pod,) = release.pods()
    release.cluster.kubectl("delete", "pod", pod["metadata"]["name"], "-n", release.namespace, "--wait=false")
    new_pod = wait_for(
        "a replacement pod holding the Lease",
        lambda: (holder := release.lease_holder()) not in (None, pod["metadata"]["name"]) and holder,
        timeout=90,
        explain=release.diagnostics,
    )
    assert _phase(release, namespace, name) not in ("Succeeded", "Failed"), (
        "the run ended before the takeover"
    )
    _wait_succeeded(release, namespace, name)
    assert new_pod in [p["metadata"]["name"] for p in release.pods()]
    # Exactly one submission: the new pod followed the run the old one started.
    assert len(_submissions(emulator, description)) == 1


# --- two replicas, the leader deleted ------------------------------------------------------------------


def test_with_two_replicas_the_standby_takes_over_within_the_lease_duration(
    release: Release, emulator: Emulator
) -> None:
    release.upgrade({"replicaCount": 2})
    wait_for("two ready replicas", lambda: len(release.pods()) == 2, timeout=120)
    lease_duration = 15  # the chart's default leaderElection.leaseDurationSeconds
    namespace, name, description = _start_long_run(release, emulator, "ha")
    leader = release.lease_holder()
    (standby,) = [p["metadata"]["name"] for p in release.pods() if p["metadata"]["name"] != leader]

    deleted_at = time.monotonic()
    release.cluster.kubectl("delete", "pod", str(leader), "-n", release.namespace, "--wait=false")
    # The standby, or the pod the ReplicaSet starts in the leader's place at once: whichever
    # asks first after the leader let go of the Lease.
    successor = wait_for(
        "another replica to take the Lease",
        lambda: (holder := release.lease_holder()) not in (None, leader) and holder,
        timeout=lease_duration + 30,
        interval=0.1,
        explain=release.diagnostics,
    )
    takeover = time.monotonic() - deleted_at
    role = "the standby" if successor == standby else "the replacement pod"
    print(f"\ne2e: {role} took over {takeover:.1f}s after the leader's deletion")
    assert takeover < lease_duration
    _wait_succeeded(release, namespace, name)
    assert len(_submissions(emulator, description)) == 1
    release.upgrade({"replicaCount": 1})


# --- RBAC, with the pod's own token ----------------------------------------------------------------------


def test_the_pods_own_token_is_refused_what_the_chart_does_not_grant(release: Release) -> None:
    (pod,) = release.pods()[:1]
    token = pod_token(release.cluster, pod)
    api = release.cluster.api_get
    # Allowed, as a control: the same token works for what the operator needs.
    assert api("/apis/emrops.io/v1alpha1/serviceactions?limit=1", token)[0] == 200
    # Refused: Secrets listed anywhere, or read in a namespace (the chart grants get only).
    assert api("/api/v1/secrets?limit=1", token)[0] == 403
    assert api("/api/v1/namespaces/kube-system/secrets?limit=1", token)[0] == 403
    assert api("/api/v1/namespaces/kube-system/configmaps?limit=1", token)[0] == 403
    assert api("/api/v1/pods?limit=1", token)[0] == 403
    assert api(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}", token)[0] == 403
    # Deleting the CRD (or a ServiceAction) is a write the chart never grants.
    denied = release.cluster.kubectl(
        f"--token={token}",
        "--kubeconfig=/dev/null",
        f"--server={release.cluster.server}",
        f"--certificate-authority={release.cluster.ca_file}",
        "delete",
        "crd",
        CRD,
        "--dry-run=server",
        check=False,
    )
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr


# --- uninstall ---------------------------------------------------------------------------------------------


def test_uninstall_keeps_the_crd_and_the_serviceactions(release: Release) -> None:
    before = release.cluster.kubectl_json("get", "serviceactions", "-A")["items"]
    assert before
    release.uninstall()
    assert release.cluster.kubectl("get", "crd", CRD, check=False).returncode == 0
    after = release.cluster.kubectl_json("get", "serviceactions", "-A")["items"]
    assert {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in after} == {
        (b["metadata"]["namespace"], b["metadata"]["name"]) for b in before
    }
    wait_for("the operator's pods to be gone", lambda: not release.pods(running_only=False), timeout=90)
