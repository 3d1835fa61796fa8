"""`helm lint` and `helm template` over several value sets, and the values schema rejecting bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_tools import CHART, Helm, container, documents, env_of, of_kind, one

from fixtures.controlplane import require_helm

pytestmark = pytest.mark.integration

RULE_KINDS = ("Role", "ClusterRole")

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "rrsa-webhook": {"rrsa": {"enabled": True, "roleName": "emrops-operator"}},
    "rrsa-manual": {
        "rrsa": {
            "enabled": True,
            "roleArn": "acs:ram::1234567890:role/emrops-operator",
            "oidcProviderArn": "acs:ram::1234567890:oidc-provider/ack-rrsa-c1",
        }
    },
    "secret": {"credentials": {"existingSecret": "emr-keys", "securityTokenKey": "securityToken"}},
    "metrics-off": {"metrics": {"enabled": False}},
    "servicemonitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}},
    "networkpolicy": {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["10.0.0.1/32"]}}},
    "sharded": {"labelSelector": "emrops.io/shard=blue", "crds": {"install": False}},
    "ha-peering": {"watchNamespaces": ["team-a"], "peering": {"name": "emrops", "priority": 100}},
    "endpoint": {"emr": {"endpoint": "https://emr-vpc.cn-hangzhou.aliyuncs.com", "network": "vpc"}},
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: documents(helm.template(values)) for name, values in VALUE_SETS.items()}


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_lint(helm: Helm, name: str) -> None:
    result = helm.run("lint", "--strict", str(CHART), values=VALUE_SETS[name])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_least_privilege_rules(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    roles = [d for d in docs if d["kind"] in RULE_KINDS]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"wildcard in {role['kind']} {key}"
            assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
            assert "resourceNames" not in rule or rule["resourceNames"]
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"], "secrets: get only (no list/watch)"
            if "create" in rule["verbs"]:
                assert rule["resources"] == ["events"], "the operator creates nothing but events"
    resources = {r for role in roles for rule in role["rules"] for r in rule["resources"]}
    assert resources <= {
        "serviceactions",
        "serviceactions/status",
        "secrets",
        "events",
        "kopfpeerings",
        "clusterkopfpeerings",
    }


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_hardened_pod(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    op = container(docs)
    sc = op["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert op["resources"]["requests"] and op["resources"]["limits"]["memory"]
    assert op["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert op["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in op["ports"]}
    assert ports["health"] == 8081
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]


def test_defaults_watch_all_namespaces(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["defaults"]
    assert of_kind(docs, "Role") == [] and of_kind(docs, "RoleBinding") == []
    role = one(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "emrops", "namespace": "emrops-system"}]
    args = container(docs)["args"]
    assert not [a for a in args if a.startswith("--namespace")]
    assert "--metrics-port=8080" in args and "--health-port=8081" in args
    assert one(docs, "CustomResourceDefinition")["metadata"]["name"] == "serviceactions.emrops.io"
    assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == "metrics"
    assert of_kind(docs, "ServiceMonitor") == [] and of_kind(docs, "NetworkPolicy") == []
    assert "env" not in container(docs), "no credentials configured by default"


def test_namespaces_get_roles_and_nothing_cluster_wide(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["namespaces"]
    assert of_kind(docs, "ClusterRole") == [] and of_kind(docs, "ClusterRoleBinding") == []
    assert sorted(r["metadata"]["namespace"] for r in of_kind(docs, "Role")) == ["team-a", "team-b"]
    bindings = of_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "emrops-system"
    args = container(docs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def test_rrsa_with_the_webhook_annotates_the_service_account(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["rrsa-webhook"]
    annotations = one(docs, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"pod-identity.alibabacloud.com/role-name": "emrops-operator"}
    assert "env" not in container(docs), "the webhook injects the RRSA environment"


def test_rrsa_without_the_webhook_mounts_the_token(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["rrsa-manual"]
    env = env_of(docs)
    assert env["ALIBABA_CLOUD_ROLE_ARN"]["value"] == "acs:ram::1234567890:role/emrops-operator"
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]["value"].endswith("oidc-provider/ack-rrsa-c1")
    token_file = Path(env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]["value"])
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "sts.aliyuncs.com"
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) / source["serviceAccountToken"]["path"] == token_file


def test_existing_secret_becomes_env_references(rendered: dict[str, list[dict[str, Any]]]) -> None:
    env = env_of(rendered["secret"])
    for name, key in (
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "accessKeyId"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "accessKeySecret"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "securityToken"),
    ):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "emr-keys", "key": key}}}


def test_metrics_off(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["metrics-off"]
    assert of_kind(docs, "Service") == [] and of_kind(docs, "ServiceMonitor") == []
    assert "--metrics-port=0" in container(docs)["args"]
    assert [p["name"] for p in container(docs)["ports"]] == ["health"]


def test_service_monitor_selects_the_metrics_service(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["servicemonitor"]
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_network_policy(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["networkpolicy"]
    policy = one(docs, "NetworkPolicy")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["metrics"]
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 443, 6443}
    api_rule = next(r for r in policy["spec"]["egress"] if {"port": 6443, "protocol": "TCP"} in r["ports"])
    assert api_rule["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]


def test_shard_without_crd(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["sharded"]
    assert of_kind(docs, "CustomResourceDefinition") == []
    assert "--label-selector=emrops.io/shard=blue" in container(docs)["args"]


def test_peering_adds_its_flags_and_rights(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ha-peering"]
    args = container(docs)["args"]
    assert "--peering=emrops" in args and "--priority=100" in args
    (role,) = of_kind(docs, "Role")
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in role["rules"]


def test_endpoint_and_network(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = container(rendered["endpoint"])["args"]
    assert "--emr-endpoint=https://emr-vpc.cn-hangzhou.aliyuncs.com" in args
    assert "--emr-network=vpc" in args


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"replicaCount": 2}, "replicaCount"),
        ({"logging": {"format": "xml"}}, "format"),
        ({"logging": {"level": "verbose"}}, "level"),
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces"),
        ({"emr": {"network": "internal"}}, "network"),
        ({"emr": {"endpoint": "ftp://emr"}}, "endpoint"),
        ({"metrics": {"port": 70000}}, "port"),
        ({"rateLimit": {"qps": -1}}, "qps"),
        ({"credentials": {"existingSecret": "Not A Name"}}, "existingSecret"),
        ({"rrsa": {"enabled": True, "roleArn": "acs:ram::1:role/x"}}, "oidcProviderArn"),
        ({"unknownKey": True}, "unknownKey"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ],
    ids=lambda v: str(v),
)
def test_schema_rejects_bad_values(helm: Helm, values: dict[str, Any], field: str) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode != 0
    assert "schema" in result.stderr and field in result.stderr, result.stderr
