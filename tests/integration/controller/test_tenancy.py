"""A tenant with only namespace rights cannot make the operator act on a cluster it was not granted.

The tenant is a real ServiceAccount holding a namespaced Role (ServiceActions and Secrets in its
namespace, nothing else), acting with its own token against the real apiserver; the operator is
`emrops run` with a tenancy policy file granting that namespace the operator's identity on the
demo cluster only, and Secret credentials on the demo cluster only. Whatever the tenant writes
(another cluster id, the granted id in another region or another case, its own Secret, another
namespace's Secret, a spec changed after creation), EMR (the emulator's calls log) sees nothing
but the granted cluster, and each refused ServiceAction says why and what to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures.kubeconfig import write_token_kubeconfig
from fixtures.tenancy import grant, write_policy
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    CLUSTER_ID,
    REGION,
    app_scope,
    marker,
    tagged_action,
)
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration

TENANT = "tenant"
#: What a team gets in its namespace: its ServiceActions and its Secrets, nothing else.
TENANT_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": TENANT},
    "rules": [
        {
            "apiGroups": ["emrops.io"],
            "resources": ["serviceactions"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "update", "delete"]},
    ],
}


class Tenant:
    """kubectl with the tenant ServiceAccount's token (not the admin's certificate)."""

    def __init__(self, kube: Kube, kubeconfig: Path) -> None:
        self.kube = kube
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, input: str | None = None) -> Any:
        # A later --kubeconfig wins over the admin one ControlPlane.kubectl passes first.
        return self.kube.cp.kubectl(
            f"--kubeconfig={self.kubeconfig}", "-n", self.kube.namespace, *args, input=input, check=False
        )

    def create(self, obj: dict[str, Any]) -> None:
        result = self.kubectl("create", "-f", "-", input=json.dumps(obj))
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def tenant(kube: Kube, workdir: Path) -> Tenant:
    kube.kubectl("create", "serviceaccount", TENANT)
    kube.kubectl("create", "-f", "-", input=json.dumps(TENANT_ROLE))
    kube.kubectl(
        "create", "rolebinding", TENANT, f"--role={TENANT}", f"--serviceaccount={kube.namespace}:{TENANT}"
    )
    path = write_token_kubeconfig(kube.cp, kube.namespace, TENANT, workdir / "tenant.kubeconfig")
    return Tenant(kube, path)


@pytest.fixture(scope="module")
def policy(kube: Kube, workdir: Path) -> Path:
    granted = [grant(kube.namespace)]
    return write_policy(workdir / "tenancy.yaml", identity=granted, secrets=granted)


@pytest.fixture(scope="module")
def operator(operator_factory: OperatorFactory, policy: Path) -> Any:
    # The operator's own identity: the emulator's demo key, as RRSA or the chart's Secret would give it.
    return operator_factory(
        "--tenancy-policy",
        str(policy),
        env={
            "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        },
    )


def action(name: str, **spec: Any) -> dict[str, Any]:
    """A restart of HDFS, tagged; no credentialsSecretRef (the operator's identity) unless given."""
    obj = tagged_action(name, "restart", app_scope("HDFS"), **spec)
    if "credentialsSecretRef" not in spec:
        del obj["spec"]["credentialsSecretRef"]
    return obj


def assert_refused(obj: dict[str, Any], policy: Path, key: str) -> None:
    assert obj["status"]["phase"] == "Failed", summarize(obj)
    stalled = condition(obj, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "TenancyDenied", summarize(obj)
    message = stalled["message"]
    assert f"emrops tenancy policy ({policy})" in message and f"tenancy.{key}" in message, message
    assert "Nothing was sent to EMR" in message and "emrops.io/run-requested-at" in message, message
    assert condition(obj, "Ready")["status"] == "False"


def emr_targets(emulator: Emulator) -> set[tuple[Any, Any]]:
    """Every (RegionId, ClusterId) any EMR call named, whatever the action."""
    return {(c["params"].get("RegionId"), c["params"].get("ClusterId")) for c in emulator.calls()}


def test_the_tenant_has_only_namespace_rights(kube: Kube, tenant: Tenant) -> None:
    def can_i(*args: str) -> str:
        return str(tenant.kubectl("auth", "can-i", *args).stdout.strip())

    assert can_i("create", "serviceactions.emrops.io") == "yes"
    assert can_i("create", "secrets") == "yes"
    assert can_i("patch", "serviceactions.emrops.io", "--subresource=status") == "no"
    assert can_i("get", "secrets", "-n", "default") == "no"
    assert can_i("create", "configmaps") == "no"


def test_a_tenant_reaches_its_granted_cluster_and_no_other(
    kube: Kube, tenant: Tenant, module_emulator: Emulator, operator: Any, policy: Path
) -> None:
    tenant.kubectl(
        "create", "secret", "generic", "own-keys",
        f"--from-literal=accessKeyId={ACCESS_KEY_ID}", f"--from-literal=accessKeySecret={ACCESS_KEY_SECRET}",
    )  # fmt: skip
    # Another team's Secret (created by an admin): a name resolves in the tenant's namespace only.
    other = kube.cp.create_namespace(prefix="other-team-")
    kube.cp.kubectl(
        "create", "secret", "generic", "team-b-keys", "-n", other,
        f"--from-literal=accessKeyId={ACCESS_KEY_ID}", f"--from-literal=accessKeySecret={ACCESS_KEY_SECRET}",
    )  # fmt: skip
    granted = {
        "identity-granted": action("identity-granted"),
        "secret-granted": action("secret-granted", credentialsSecretRef={"name": "own-keys"}),
    }
    refused = {
        "identity-other-cluster": (
            action("identity-other-cluster", clusterId="c-0therteam0001"),
            "operatorIdentity",
        ),
        "identity-other-region": (action("identity-other-region", regionId="cn-beijing"), "operatorIdentity"),
        "identity-upper-case": (
            action("identity-upper-case", clusterId=CLUSTER_ID.upper()),
            "operatorIdentity",
        ),
        "secret-other-cluster": (
            action(
                "secret-other-cluster", clusterId="c-0therteam0001", credentialsSecretRef={"name": "own-keys"}
            ),
            "secretCredentials",
        ),
    }
    foreign = action("foreign-secret", credentialsSecretRef={"name": "team-b-keys"})
    for obj in [*granted.values(), *(o for o, _ in refused.values()), foreign]:
        tenant.create(obj)

    done = kube.wait_phase([*granted, *refused], timeout=120)
    for name in granted:
        assert done[name]["status"]["phase"] == "Succeeded", summarize(done[name])
        assert len(module_emulator.ok_runs(name)) == 1
    for name, (_obj, key) in refused.items():
        assert_refused(done[name], policy, key)
        assert module_emulator.run_calls(name) == []

    # A Secret of another namespace is not found from this one: no call, whatever its name.
    waiting = kube.wait_until(
        "the foreign Secret reported missing",
        lambda objs: (
            condition(objs.get("foreign-secret", {}), "Reconciling").get("reason") == "CredentialsMissing"
        ),
    )["foreign-secret"]
    assert f"Secret {kube.namespace}/team-b-keys" in waiting["status"]["message"]
    assert module_emulator.run_calls("foreign-secret") == []

    # EMR heard of the granted cluster only: no plan, listing or poll of anything else either.
    assert emr_targets(module_emulator) == {(REGION, CLUSTER_ID)}
    assert {c["access_key_id"] for c in module_emulator.calls()} == {ACCESS_KEY_ID}


def test_the_spec_cannot_be_moved_to_another_cluster_after_creation(
    kube: Kube, tenant: Tenant, module_emulator: Emulator, operator: Any
) -> None:
    name = "moved-later"
    tenant.create(action(name, suspend=True))  # waits for approval: time to try moving it
    for field, value in (("clusterId", "c-0therteam0001"), ("regionId", "cn-beijing")):
        patch = json.dumps({"spec": {field: value, "suspend": False}})
        result = tenant.kubectl("patch", "serviceactions.emrops.io", name, "--type=merge", "-p", patch)
        assert result.returncode != 0 and "immutable" in result.stderr, result.stderr
    # Nor through the status, which the tenant may not write.
    result = tenant.kubectl(
        "patch", "serviceactions.emrops.io", name, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Pending", "approvedAt": "2026-01-01T00:00:00Z"}}),
    )  # fmt: skip
    assert result.returncode != 0 and "forbidden" in result.stderr.lower(), result.stderr
    assert kube.get(name)["spec"]["clusterId"] == CLUSTER_ID
    assert emr_targets(module_emulator) <= {(REGION, CLUSTER_ID)}


def test_a_revocation_takes_effect_without_a_restart_and_a_grant_is_rerun(
    kube: Kube, tenant: Tenant, module_emulator: Emulator, operator: Any, policy: Path
) -> None:
    original = policy.read_text()
    # Replaced as the kubelet replaces a mounted ConfigMap's file: a new file moved into place.
    revoked = write_policy(policy.with_suffix(".new"), identity=[], secrets=[])
    os.replace(revoked, policy)
    try:
        name = "after-revocation"
        tenant.create(action(name))
        obj = kube.wait_phase([name], timeout=60)[name]
        assert_refused(obj, policy, "operatorIdentity")
        assert "it grants this namespace nothing" in condition(obj, "Stalled")["message"]
        assert module_emulator.run_calls(name) == []
    finally:
        restored = policy.with_suffix(".new")
        restored.write_text(original)
        os.replace(restored, policy)
    kube.annotate(name, "emrops.io/run-requested-at", "granted again")
    done = kube.wait_until(
        "the re-run to succeed",
        lambda objs: (
            (objs[name].get("status") or {}).get("run") == 2
            and objs[name]["status"].get("phase") == "Succeeded"
        ),
    )[name]
    assert len(module_emulator.ok_runs(name)) == 1, summarize(done)
    assert marker(name) in str(module_emulator.ok_runs(name)[0]["params"].get("Description"))
