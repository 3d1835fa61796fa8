"""`helm lint` and `helm template` over several value sets, and the values schema rejecting bad input.

Also: every operator setting the chart passes is parsed by the operator's own settings code (so a
value in extraEnv is proven to take effect), and the `helm test` Pod's script is run for real
against a local health server.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_tools import CHART, HOOK, Helm, container, documents, env_of, hooks_of, of_kind, one

from emrops.controller.health import READY_CHECK_SECONDS
from emrops.controller.settings import OPTIONS, LeaderSettings, Settings, add_arguments, from_args
from emrops.controller.tenancy import Grant
from emrops.controller.tenancy_file import load as load_policy
from emrops.controller.tenancy_file import problem
from emrops.emr.endpoints import parse_endpoint_override
from fixtures.controlplane import require_helm

pytestmark = pytest.mark.integration

RULE_KINDS = ("Role", "ClusterRole")
RELEASE, RELEASE_NS = "emrops", "emrops-system"  # what helm.template renders by default
LEASE_ROLE = f"{RELEASE}-leader-election"
# The Lease rights, all of them: create (RBAC cannot name an object not yet created), and get and
# update of the one Lease named after the release.
LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [RELEASE],
        "verbs": ["get", "update"],
    },
]
# The downward API variables the chart sets: the Lease holder's identity and the pod's namespace.
POD_ENV = {
    "POD_NAME": {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    "POD_NAMESPACE": {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    },
}

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
    # Two replicas: one leads, one stands by; a PodDisruptionBudget keeps one up.
    "ha": {"replicaCount": 2, "watchNamespaces": ["team-a"]},
    "no-leader-election": {"leaderElection": {"enabled": False}},
    "endpoint": {"emr": {"endpoint": "https://emr-vpc.cn-hangzhou.aliyuncs.com", "network": "vpc"}},
    "extras": {
        "image": {"digest": "sha256:" + "0123456789abcdef" * 4},
        "commonLabels": {"team": "data", "cost-center": "42"},
        "podLabels": {"team": "platform"},
        "revisionHistoryLimit": 3,
        "emr": {"callTimeoutSeconds": 45},
        "serviceAccount": {"automount": False},
        "extraArgs": ["--rate-limit-qps=3"],
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}],
        "extraEnvFrom": [{"configMapRef": {"name": "proxy-env"}, "prefix": "CORP_"}],
        "extraVolumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            },
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"tier": "ops"}},
            },
        ],
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"team": "prometheus"}}},
        "networkPolicy": {"enabled": True},
    },
    # Every tunable setting from extraEnv, one from a ConfigMap: none of their flags is written.
    "extra-env": {
        "peering": {"name": "emrops"},
        "extraEnv": [
            {
                "name": "EMROPS_LOG_LEVEL",
                "valueFrom": {"configMapKeyRef": {"name": "tuning", "key": "level"}},
            },
            {"name": "EMROPS_RATE_LIMIT_QPS", "value": "2.5"},
            {"name": "EMROPS_RATE_LIMIT_BURST", "value": "5"},
            {"name": "EMROPS_POLL_INITIAL_SECONDS", "value": "1"},
            {"name": "EMROPS_POLL_MAX_SECONDS", "value": "8"},
            {"name": "EMROPS_EMR_CALL_TIMEOUT", "value": "12"},
            {"name": "EMROPS_EMR_NETWORK", "value": "vpc"},
            {"name": "EMROPS_EMR_ENDPOINT", "value": "https://emr.example.com"},
            {"name": "EMROPS_LABEL_SELECTOR", "value": "shard=blue"},
            {"name": "EMROPS_LOG_FORMAT", "value": "text"},
            {"name": "EMROPS_PRIORITY", "value": "7"},
            {"name": "EMROPS_LEADER_ELECT_LEASE_DURATION", "value": "30"},
            {"name": "EMROPS_LEADER_ELECT_RENEW_DEADLINE", "value": "20"},
            {"name": "EMROPS_LEADER_ELECT_RETRY_PERIOD", "value": "4"},
        ],
    },
    # The tenancy policy (docs/security.md): one namespace, a glob, and no Secret credentials at all.
    "tenancy": {
        "tenancy": {
            "operatorIdentity": [
                {"namespace": "team-a", "regions": ["cn-hangzhou"], "clusters": ["c-8a3f2e1d9b7c6a50"]},
                {"namespace": "batch-*", "regions": ["*"], "clusters": ["c-batch?"]},
            ],
            "secretCredentials": [],
        }
    },
    # Numbers that a float64 would print in exponent form (1e+07) must reach the operator as integers.
    "big-numbers": {
        "rateLimit": {"qps": 0.00001, "burst": 10000000},
        "peering": {"name": "emrops", "priority": 12345678},
        "polling": {"initialSeconds": 0.5, "maxSeconds": 1000000},
        "leaderElection": {
            "leaseDurationSeconds": 1000000,
            "renewDeadlineSeconds": 2.5,
            "retryPeriodSeconds": 0.5,
        },
    },
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    """What `helm install` creates for each value set (the `helm test` hooks left out)."""
    return {name: documents(helm.template(values, skip_tests=True)) for name, values in VALUE_SETS.items()}


@pytest.fixture(scope="module")
def with_tests(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    """Each value set rendered with its `helm test` hooks."""
    return {name: documents(helm.template(values)) for name, values in VALUE_SETS.items()}


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_lint(helm: Helm, name: str) -> None:
    result = helm.run("lint", "--strict", str(CHART), values=VALUE_SETS[name])
    assert result.returncode == 0, result.stdout + result.stderr


def leader_election_on(name: str) -> bool:
    return bool(VALUE_SETS[name].get("leaderElection", {}).get("enabled", True))


def lease_role(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The one Role granting Lease rights (None without leader election), checked to be the
    chart's: in the release namespace, bound to the operator's ServiceAccount only."""
    roles = [d for d in docs if d["kind"] in RULE_KINDS]
    with_leases = [r for r in roles if any("leases" in rule["resources"] for rule in r["rules"])]
    if not with_leases:
        assert not [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == LEASE_ROLE]
        return None
    (role,) = with_leases
    assert role["kind"] == "Role"
    assert (role["metadata"]["name"], role["metadata"]["namespace"]) == (LEASE_ROLE, RELEASE_NS)
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == LEASE_ROLE]
    assert binding["metadata"]["namespace"] == RELEASE_NS
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE}
    sa = one(docs, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["name"], "namespace": RELEASE_NS}]
    return role


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_least_privilege_rules(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    roles = [d for d in docs if d["kind"] in RULE_KINDS]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], f"wildcard in {role['kind']} {key}"
            assert not {"deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])
            if "delete" in rule["verbs"]:
                # Runs past ttlSecondsAfterFinished or a schedule's history limits (by uid and version).
                assert rule["resources"] == ["serviceactions"], (
                    "the operator deletes nothing but ServiceActions"
                )
            assert "resourceNames" not in rule or rule["resourceNames"]
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"], "secrets: get only (no list/watch)"
            if "create" in rule["verbs"]:
                assert rule["resources"] in (["events"], ["leases"], ["serviceactions"]), (
                    "the operator creates nothing but events, leases and a schedule's ServiceActions"
                )
    # The Lease Role is the only extra: exactly the Lease rights, in the release namespace, on the
    # Lease the operator is told to use; no other role mentions leases.
    leases = lease_role(docs)
    if leader_election_on(name):
        assert leases is not None and leases["rules"] == LEASE_RULES
        args = container(docs)["args"]
        assert f"--leader-election-namespace={RELEASE_NS}" in args
        assert f"--leader-election-id={RELEASE}" in args
    else:
        assert leases is None
    others = [r for r in roles if r is not leases]
    assert not [
        g for r in others for rule in r["rules"] for g in rule["apiGroups"] if g == "coordination.k8s.io"
    ]
    resources = {r for role in others for rule in role["rules"] for r in rule["resources"]}
    assert resources <= {
        "serviceactions",
        "serviceactions/status",
        "serviceactionschedules",
        "serviceactionschedules/status",
        "secrets",
        "events",
        "kopfpeerings",
        "clusterkopfpeerings",
    }


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_hardened_pod(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == VALUE_SETS[name].get("replicaCount", 1)
    if leader_election_on(name):
        # The new pod starts as a standby before the old one stops (and releases the Lease).
        assert deployment["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
    else:
        # Never two operators at once without leader election: the old pod stops first.
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # The downward API gives every replica its identity in the Lease, and its namespace.
    assert {n: e for n, e in env_of(docs).items() if n.startswith("POD_")} == POD_ENV
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
    # /readyz bounds its own check; the kubelet must wait longer than that to hear its answer.
    assert op["readinessProbe"]["timeoutSeconds"] > READY_CHECK_SECONDS
    ports = {p["name"]: p["containerPort"] for p in op["ports"]}
    assert ports["health"] == 8081
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    # Service links would put EMROPS_METRICS_PORT=tcp://... in the operator's environment
    # (a Service named emrops-metrics), a variable the operator reads.
    assert pod["enableServiceLinks"] is False
    assert deployment["spec"]["revisionHistoryLimit"] == (3 if name == "extras" else 10)
    assert not hooks_of(docs), "an install holds no test hook"


def operator_settings(docs: list[dict[str, Any]], env: dict[str, str] | None = None) -> Settings:
    """The settings the operator builds from the rendered args and the given environment."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(container(docs)["args"]), env or {})


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_the_operator_accepts_the_rendered_args(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    settings = operator_settings(rendered[name])
    values = VALUE_SETS[name]
    assert settings.tenancy.policy_file == "/etc/emrops/tenancy/policy.yaml"
    if name == "defaults":
        assert settings.emr.call_timeout == 30 and settings.rate_limit.burst == 20
        assert settings.serve.health_port == 8081 and settings.serve.metrics_port == 8080
        assert settings.log.format == "json" and settings.shutdown.grace_seconds == 20
    if leader_election_on(name) and name not in ("big-numbers", "extra-env"):
        assert settings.leader == LeaderSettings(True, RELEASE_NS, RELEASE, 15, 10, 2)
    if not leader_election_on(name):
        assert settings.leader.enabled is False
    if name == "big-numbers":
        assert settings.rate_limit.burst == 10000000 and settings.watch.priority == 12345678
        assert settings.rate_limit.qps == pytest.approx(0.00001)
        assert settings.polling.max_seconds == 1000000
        assert settings.leader == LeaderSettings(True, RELEASE_NS, RELEASE, 1000000, 2.5, 0.5)
    if name == "extras":
        assert settings.emr.call_timeout == 45
        assert settings.rate_limit.qps == 3, "extraArgs come last: their flag wins"
    if name == "namespaces":
        assert settings.watch.namespaces == tuple(values["watchNamespaces"])


def test_extra_env_takes_effect(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["extra-env"]
    args = container(docs)["args"]
    env = env_of(docs)
    extra = [e["name"] for e in VALUE_SETS["extra-env"]["extraEnv"]]
    assert list(env) == [*POD_ENV, *extra], "the chart's own variables, then extraEnv in order"
    by_env = {o.env: o.flag for o in OPTIONS}
    for variable in extra:
        flag = by_env[variable]
        assert not [a for a in args if a.startswith(f"{flag}=")], f"{flag} would shadow {variable}"
    assert env["EMROPS_LOG_LEVEL"]["valueFrom"] == {"configMapKeyRef": {"name": "tuning", "key": "level"}}
    # What the operator makes of the pod: the values from the environment, not the chart's.
    settings = operator_settings(
        docs, {name: e["value"] for name, e in env.items() if "value" in e} | {"EMROPS_LOG_LEVEL": "debug"}
    )
    assert settings.log.level == "DEBUG" and settings.log.format == "text"
    assert (settings.rate_limit.qps, settings.rate_limit.burst) == (2.5, 5)
    assert (settings.polling.initial_seconds, settings.polling.max_seconds) == (1, 8)
    assert settings.emr.call_timeout == 12 and settings.emr.network == "vpc"
    assert settings.emr.endpoint == "https://emr.example.com"
    assert settings.watch.label_selector == "shard=blue" and settings.watch.priority == 7
    # The lease timings from extraEnv too; whether to elect, and which Lease, stay the chart's flags.
    assert settings.leader == LeaderSettings(True, RELEASE_NS, RELEASE, 30, 20, 4)
    # The fixed settings stay flags.
    assert settings.watch.peering == "emrops" and settings.serve.health_port == 8081


# Settings other chart objects follow from: refused in extraEnv and extraArgs, saying why.
FIXED = {
    "EMROPS_NAMESPACES": "set watchNamespaces instead",
    "EMROPS_METRICS_PORT": "set metrics.enabled and metrics.port instead",
    "EMROPS_HEALTH_PORT": "set health.port instead",
    "EMROPS_SHUTDOWN_GRACE": "set shutdownGraceSeconds instead",
    "EMROPS_PEERING": "set peering.name instead",
    "EMROPS_LEADER_ELECT": "set leaderElection.enabled instead (the Lease RBAC follows it)",
    "EMROPS_LEADER_ELECTION_NAMESPACE": "the Lease lives in the release namespace, where the chart grants",
    "EMROPS_LEADER_ELECTION_ID": "the Lease is named after the release, as the chart's RBAC expects",
    "EMROPS_TENANCY_POLICY": "set tenancy.operatorIdentity and tenancy.secretCredentials instead",
}


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.env)
def test_every_operator_variable_either_wins_in_extra_env_or_is_refused(helm: Helm, option: Any) -> None:
    """Kept in step with the operator: a new flag needs a row in the chart's emrops.settings."""
    values = {"peering": {"name": "emrops"}, "extraEnv": [{"name": option.env, "value": "1"}]}
    result = helm.run("template", "emrops", str(CHART), "--skip-tests", values=values)
    if option.env in FIXED:
        assert result.returncode != 0
        assert f"extraEnv sets {option.env}: {FIXED[option.env]}" in result.stderr, result.stderr
        # Its flag in extraArgs too, with the same reason.
        as_arg = helm.run("template", "emrops", str(CHART), values={"extraArgs": [f"{option.flag}=1"]})
        assert as_arg.returncode != 0
        assert f"extraArgs passes {option.flag}=1: {FIXED[option.env]}" in as_arg.stderr, as_arg.stderr
        return
    assert result.returncode == 0, result.stderr
    args = container(documents(result.stdout))["args"]
    assert not [a for a in args if a == option.flag or a.startswith(f"{option.flag}=")], args


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"extraEnv": [{"name": "EMROPS_RATE_LIMT_QPS", "value": "1"}]},
            "extraEnv sets EMROPS_RATE_LIMT_QPS, which the operator does not read",
        ),
        (
            {"extraEnv": [{"name": "TZ", "value": "UTC"}, {"name": "TZ", "value": "CET"}]},
            "extraEnv sets TZ twice",
        ),
        (
            {
                "credentials": {"existingSecret": "emr-keys"},
                "extraEnv": [{"name": "ALIBABA_CLOUD_ACCESS_KEY_ID", "value": "x"}],
            },
            "extraEnv sets ALIBABA_CLOUD_ACCESS_KEY_ID, which the chart already sets",
        ),
        ({"extraArgs": ["--health-port=9000"]}, "extraArgs passes --health-port=9000: set health.port"),
        ({"extraArgs": ["--health=9000"]}, "extraArgs passes --health=9000: set health.port"),
        ({"extraArgs": ["--metrics-port", "9000"]}, "extraArgs passes --metrics-port: set metrics.enabled"),
        ({"extraArgs": ["--namespace=team-c"]}, "set watchNamespaces"),
        (
            {"extraArgs": ["--leader-elect=false"]},
            "extraArgs passes --leader-elect=false: set leaderElection.enabled instead",
        ),
        # argparse takes an unambiguous prefix of a flag: so does the refusal.
        (
            {"extraArgs": ["--leader-election-n=kube-system"]},
            "extraArgs passes --leader-election-n=kube-system: the Lease lives in the release namespace",
        ),
        (
            {"extraEnv": [{"name": "POD_NAMESPACE", "value": "kube-system"}]},
            "extraEnv sets POD_NAMESPACE, which the chart already sets from the pod",
        ),
        (
            {"replicaCount": 2, "leaderElection": {"enabled": False}},
            "replicaCount is 2 but leaderElection.enabled is false: replicas without leader election "
            "would all work at once",
        ),
        (
            {"leaderElection": {"renewDeadlineSeconds": 15}},
            "leaderElection needs retryPeriodSeconds (2) < renewDeadlineSeconds (15) "
            "< leaseDurationSeconds (15)",
        ),
        (
            {"leaderElection": {"retryPeriodSeconds": 10}},
            "leaderElection needs retryPeriodSeconds (10) < renewDeadlineSeconds (10) "
            "< leaseDurationSeconds (15)",
        ),
        (
            {
                "leaderElection": {
                    "leaseDurationSeconds": 8,
                    "renewDeadlineSeconds": 9,
                    "retryPeriodSeconds": 1,
                }
            },
            "a leader must give up before a standby may take over",
        ),
        ({"extraArgs": ["-n", "team-c"]}, "set watchNamespaces"),
        ({"extraArgs": ["-nteam-c"]}, "set watchNamespaces"),
        ({"extraArgs": ["--shutdown-grace=5"]}, "set shutdownGraceSeconds"),
        ({"extraArgs": ["--peering=x"]}, "set peering.name"),
        (
            {"polling": {"initialSeconds": 40, "maxSeconds": 30}},
            "polling.initialSeconds (40) is above polling.maxSeconds (30)",
        ),
        ({"metrics": {"port": 8081}}, "metrics.port and health.port are both 8081"),
    ],
    ids=lambda v: str(v)[:60],
)
def test_chart_refuses_what_would_be_ignored_or_break_it(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "values",
    [
        {"polling": {"initialSeconds": 30, "maxSeconds": 30}},
        {"metrics": {"enabled": False, "port": 8081}},
        {"extraArgs": ["--log-level=DEBUG", "--nothing-like-a-fixed-flag"]},
        {"extraArgs": ["--leader-elect-lease-duration=30", "--leader-elect-retry-period", "3"]},
        {"extraEnv": [{"name": "TZ", "value": "UTC"}, {"name": "HTTPS_PROXY", "value": "http://p:3128"}]},
        {"replicaCount": 10},
        {"replicaCount": 0, "leaderElection": {"enabled": False}},
        {"leaderElection": {"leaseDurationSeconds": 4, "renewDeadlineSeconds": 3, "retryPeriodSeconds": 0.5}},
    ],
    ids=lambda v: str(v)[:60],
)
def test_chart_accepts_the_edges(helm: Helm, values: dict[str, Any]) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["defaults", "tenancy"])
def test_the_tenancy_policy_is_rendered_mounted_and_read_by_the_operator(
    rendered: dict[str, list[dict[str, Any]]], name: str, tmp_path: Path
) -> None:
    docs = rendered[name]
    (config,) = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"] == f"{RELEASE}-tenancy"]
    assert config["metadata"]["namespace"] == RELEASE_NS
    # Parsed by the operator's own code, from a file as the kubelet would write it.
    path = tmp_path / "policy.yaml"
    path.write_text(config["data"]["policy.yaml"])
    assert problem(path) is None
    policy = load_policy(path)
    if name == "defaults":
        # A fresh install: the operator's identity serves no namespace; Secrets go anywhere.
        assert policy.operator_identity == ()
        assert policy.secret_credentials == (Grant("*", ("*",), ("*",)),)
    else:
        assert policy.operator_identity == (
            Grant("team-a", ("cn-hangzhou",), ("c-8a3f2e1d9b7c6a50",)),
            Grant("batch-*", ("*",), ("c-batch?",)),
        )
        assert policy.secret_credentials == ()
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tenancy"]
    assert volume == {"name": "tenancy", "configMap": {"name": config["metadata"]["name"]}}
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["name"] == "tenancy"]
    assert mount["readOnly"] is True and "subPath" not in mount, "a subPath mount is never updated"
    assert f"--tenancy-policy={mount['mountPath']}/policy.yaml" in container(docs)["args"]
    # Changing the policy must not restart the operator: nothing in the pod template follows it.
    assert "checksum" not in json.dumps(deployment["spec"]["template"]["metadata"])


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"tenancy": {"operatorIdentity": [{"namespace": "team-a", "regions": ["*"]}]}}, "clusters"),
        (
            {"tenancy": {"operatorIdentity": [{"namespace": "Team_A", "regions": ["*"], "clusters": ["*"]}]}},
            "namespace",
        ),
        (
            {"tenancy": {"operatorIdentity": [{"namespace": "a", "regions": [], "clusters": ["*"]}]}},
            "regions",
        ),
        (
            {
                "tenancy": {
                    "secretCredentials": [{"namespace": "a", "regions": ["*"], "clusters": ["c-[ab]"]}]
                }
            },
            "clusters",
        ),
        (
            {"tenancy": {"operatorIdentity": {"team-a": {"regions": ["*"], "clusters": ["*"]}}}},
            "operatorIdentity",
        ),
        ({"tenancy": {"operatorIdentities": []}}, "operatorIdentities"),
        (
            {
                "tenancy": {
                    "operatorIdentity": [
                        {"namespace": "a", "regions": ["*"], "clusters": ["*"], "cluster": "x"}
                    ]
                }
            },
            "cluster",
        ),
        ({"extraVolumes": [{"name": "tenancy", "emptyDir": {}}]}, "extraVolumes"),
    ],
    ids=lambda v: str(v)[:70],
)
def test_schema_rejects_bad_tenancy_values(helm: Helm, values: dict[str, Any], field: str) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode != 0
    assert "schema" in result.stderr and field in result.stderr, result.stderr


def test_new_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["extras"]
    values = VALUE_SETS["extras"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    op = container(docs)
    assert op["image"] == "ghcr.io/emrops/emrops@" + values["image"]["digest"]
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["cost-center"] == "42", doc["kind"]
        assert labels["team"] == ("prometheus" if doc["kind"] == "ServiceMonitor" else "data"), doc["kind"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["team"] == "platform" and pod_labels["cost-center"] == "42"
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "emrops",
        "app.kubernetes.io/instance": "emrops",
    }
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is True, "the operator needs its token"
    assert "--emr-call-timeout=45" in op["args"]
    assert op["args"][-1] == "--rate-limit-qps=3"
    assert env_of(docs)["HTTPS_PROXY"]["value"] == "http://proxy.internal:3128"
    assert op["envFrom"] == values["extraEnvFrom"]
    assert pod["volumes"][-1] == values["extraVolumes"][0]
    assert op["volumeMounts"][-1] == values["extraVolumeMounts"][0]
    assert {m["mountPath"] for m in op["volumeMounts"]} == {"/tmp", "/etc/emrops/tenancy", "/etc/ssl/corp"}
    zone, host = pod["topologySpreadConstraints"]
    assert zone["labelSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert host["labelSelector"] == {"matchLabels": {"tier": "ops"}}


def test_image_by_tag(helm: Helm) -> None:
    assert container(documents(helm.template(skip_tests=True)))["image"] == "ghcr.io/emrops/emrops:0.1.0"
    tagged = helm.template({"image": {"tag": "0.2.0-rc1"}}, skip_tests=True)
    assert container(documents(tagged))["image"] == "ghcr.io/emrops/emrops:0.2.0-rc1"


# --- helm test -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_helm_test_checks_readiness_through_a_service(
    with_tests: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = with_tests[name]
    hooks = hooks_of(docs)
    assert {d["kind"] for d in docs if HOOK in (d["metadata"].get("annotations") or {})} <= {
        "Pod",
        "Service",
        "NetworkPolicy",
    }
    for hook in hooks:
        annotations = hook["metadata"]["annotations"]
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert len(hook["metadata"]["name"]) <= 63
    service, pod = one(hooks, "Service"), one(hooks, "Pod")
    # The Service (created first) selects the operator's pods, on the port its probes use.
    assert int(service["metadata"]["annotations"].get("helm.sh/hook-weight", "0")) < int(
        pod["metadata"]["annotations"].get("helm.sh/hook-weight", "0")
    )
    deployment = one(docs, "Deployment")
    operator_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= operator_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    (port,) = service["spec"]["ports"]
    op = container(docs)
    assert port["targetPort"] == "health" and "health" in {p["name"] for p in op["ports"]}
    assert op["readinessProbe"]["httpGet"]["port"] == "health"
    # The Pod: the operator's own image, hardened like the operator, no API token.
    spec = pod["spec"]
    (check,) = spec["containers"]
    assert check["image"] == op["image"] and check["imagePullPolicy"] == op["imagePullPolicy"]
    assert check["command"][:2] == ["python", "-c"]
    env = {e["name"]: e["value"] for e in check["env"]}
    assert env["TEST_SERVICE"] == service["metadata"]["name"]
    assert env["TEST_PORT"] == str(port["port"])
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == deployment["spec"]["template"]["spec"]["securityContext"]
    assert check["securityContext"] == op["securityContext"]
    # Nothing of the release selects the test Pod (Services, the NetworkPolicy, the Deployment).
    selectors = [deployment["spec"]["selector"]["matchLabels"]]
    selectors += [s["spec"]["selector"] for s in of_kind(docs, "Service")]
    selectors += [p["spec"]["podSelector"]["matchLabels"] for p in of_kind(docs, "NetworkPolicy")]
    selectors += [p["spec"]["selector"]["matchLabels"] for p in of_kind(docs, "PodDisruptionBudget")]
    selectors = [s for s in selectors if s is not service["spec"]["selector"]]
    test_policies = of_kind(hooks, "NetworkPolicy")
    selectors = [
        s for s in selectors if not any(s is p["spec"]["podSelector"]["matchLabels"] for p in test_policies)
    ]
    for selector in selectors:
        assert not selector.items() <= pod["metadata"]["labels"].items(), selector
    # With the release's NetworkPolicy, a hook policy admits the test Pod to the health port only.
    if VALUE_SETS[name].get("networkPolicy", {}).get("enabled"):
        (policy,) = test_policies
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= operator_labels.items()
        (rule,) = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": "health", "protocol": "TCP"}]
        (peer,) = rule["from"]
        assert peer["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    else:
        assert test_policies == []


class _HealthServer(http.server.HTTPServer):
    """/readyz and /healthz on a local port, answering with the statuses a test sets."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HealthHandler)
        self.statuses = {"/readyz": 200, "/healthz": 200}
        self.requests: list[str] = []


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        status = self.server.statuses.get(self.path, 404)
        self.server.requests.append(self.path)
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"ok": true}' if status == 200 else b"not ready")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[_HealthServer]:
    server = _HealthServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _run_test_pod(
    with_tests: dict[str, list[dict[str, Any]]], server: _HealthServer, timeout: str
) -> subprocess.CompletedProcess[str]:
    """The test Pod's container command, run here with the variables Kubernetes would give it."""
    (check,) = one(hooks_of(with_tests["defaults"]), "Pod")["spec"]["containers"]
    env = {e["name"]: e["value"] for e in check["env"]}
    service_host = env["TEST_SERVICE"].upper().replace("-", "_") + "_SERVICE_HOST"
    env |= {"TEST_PORT": str(server.server_address[1]), "TEST_TIMEOUT_SECONDS": timeout}
    env |= {service_host: "127.0.0.1", "PATH": os.environ["PATH"]}
    command = [sys.executable, *check["command"][1:]]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_helm_test_pod_passes_when_ready_and_alive(
    with_tests: dict[str, list[dict[str, Any]]], health_server: _HealthServer
) -> None:
    result = _run_test_pod(with_tests, health_server, "10")
    assert result.returncode == 0, result.stderr
    assert health_server.requests == ["/readyz", "/healthz"]
    assert "/readyz: 200" in result.stdout and "/healthz: 200" in result.stdout


def test_helm_test_pod_fails_when_not_ready(
    with_tests: dict[str, list[dict[str, Any]]], health_server: _HealthServer
) -> None:
    health_server.statuses["/readyz"] = 503
    result = _run_test_pod(with_tests, health_server, "1")
    assert result.returncode == 1
    assert "/readyz" in result.stderr and "503" in result.stderr
    assert "/healthz" not in health_server.requests


# --- documentation --------------------------------------------------------------------------------


def test_notes_point_at_no_repository_path() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert not re.search(r"\b(examples|docs|deploy|crds|hack|tests)/|\.md\b", notes), notes
    assert "helm test {{ .Release.Name }}" in notes


def test_install_docs_list_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    table = (Path(__file__).resolve().parents[3] / "docs" / "install.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| `")]

    def leaves(tree: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if (
                isinstance(value, dict)
                and value
                and key
                not in (
                    "resources",
                    "podSecurityContext",
                    "securityContext",
                    "livenessProbe",
                    "readinessProbe",
                )
            ):
                yield from leaves(value, f"{path}.")
            else:
                yield path

    for path in leaves(values, ""):
        head, _, last = path.rpartition(".")
        documented = any(
            f"`{path}`" in row or (head and f"`{head}." in row and (f".{last}`" in row or f"`{last}`" in row))
            for row in rows
        )
        assert documented, f"{path} is missing from docs/install.md's values table"


def test_defaults_watch_all_namespaces(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["defaults"]
    # The one namespaced Role is the Lease's (leader election is on by default).
    assert of_kind(docs, "Role") == [lease_role(docs)]
    assert [b["roleRef"]["name"] for b in of_kind(docs, "RoleBinding")] == [LEASE_ROLE]
    role = one(docs, "ClusterRole")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "emrops", "namespace": "emrops-system"}]
    args = container(docs)["args"]
    assert not [a for a in args if a.startswith("--namespace")]
    assert "--metrics-port=8080" in args and "--health-port=8081" in args
    assert sorted(c["metadata"]["name"] for c in of_kind(docs, "CustomResourceDefinition")) == [
        "serviceactions.emrops.io",
        "serviceactionschedules.emrops.io",
    ]
    assert one(docs, "Service")["spec"]["ports"][0]["targetPort"] == "metrics"
    assert of_kind(docs, "ServiceMonitor") == [] and of_kind(docs, "NetworkPolicy") == []
    assert env_of(docs) == POD_ENV, "no credentials configured by default"
    # One replica: no PodDisruptionBudget (it would block every node drain), but leader election
    # on, so that an upgrade's new pod waits as a standby until the old one releases the Lease.
    assert of_kind(docs, "PodDisruptionBudget") == []
    assert leader_flags(docs) == LEADER_FLAGS


def test_namespaces_get_roles_and_nothing_cluster_wide(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["namespaces"]
    assert of_kind(docs, "ClusterRole") == [] and of_kind(docs, "ClusterRoleBinding") == []
    leases = lease_role(docs)
    roles = [r for r in of_kind(docs, "Role") if r is not leases]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = [b for b in of_kind(docs, "RoleBinding") if b["roleRef"]["name"] != LEASE_ROLE]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    # The release namespace holds the Lease Role only: nothing else of the operator's there.
    assert [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == RELEASE_NS] == [leases]
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
    assert env_of(docs) == POD_ENV, "the webhook injects the RRSA environment"


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
    (role,) = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == "team-a"]
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in role["rules"]


LEADER_FLAGS = [
    "--leader-elect=true",
    f"--leader-election-namespace={RELEASE_NS}",
    f"--leader-election-id={RELEASE}",
    "--leader-elect-lease-duration=15",
    "--leader-elect-renew-deadline=10",
    "--leader-elect-retry-period=2",
]


def leader_flags(docs: list[dict[str, Any]]) -> list[str]:
    return [a for a in container(docs)["args"] if a.startswith("--leader-elect")]


def test_replicas_elect_a_leader_and_keep_one_up(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ha"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert leader_flags(docs) == LEADER_FLAGS
    role = lease_role(docs)
    assert role is not None and role["rules"] == LEASE_RULES
    # At least one replica (the leader, or a standby ready to take over) through node drains.
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["name"] == deployment["metadata"]["name"]
    assert pdb["metadata"]["namespace"] == RELEASE_NS
    selector = deployment["spec"]["selector"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": selector}
    assert selector["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_pod_disruption_budget_can_be_left_out(helm: Helm) -> None:
    docs = documents(
        helm.template({"replicaCount": 3, "podDisruptionBudget": {"enabled": False}}, skip_tests=True)
    )
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert of_kind(docs, "PodDisruptionBudget") == []
    assert leader_flags(docs) == LEADER_FLAGS


def test_without_leader_election(helm: Helm, rendered: dict[str, list[dict[str, Any]]]) -> None:
    """One replica, replaced by Recreate: no Lease, no Lease rights, no leader flags."""
    docs = rendered["no-leader-election"]
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert leader_flags(docs) == []
    assert lease_role(docs) is None
    assert of_kind(docs, "Role") == [] and of_kind(docs, "RoleBinding") == []
    assert of_kind(docs, "PodDisruptionBudget") == []
    assert operator_settings(docs).leader == LeaderSettings(enabled=False)
    # The lease timings in extraEnv are harmless then (nothing elects), and still no flag appears.
    timings = [{"name": "EMROPS_LEADER_ELECT_LEASE_DURATION", "value": "30"}]
    values = {**VALUE_SETS["no-leader-election"], "extraEnv": timings}
    assert leader_flags(documents(helm.template(values, skip_tests=True))) == []


def test_endpoint_and_network(rendered: dict[str, list[dict[str, Any]]]) -> None:
    args = container(rendered["endpoint"])["args"]
    assert "--emr-endpoint=https://emr-vpc.cn-hangzhou.aliyuncs.com" in args
    assert "--emr-network=vpc" in args


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"replicaCount": 11}, "replicaCount"),
        ({"replicaCount": -1}, "replicaCount"),
        ({"leaderElection": {"enabled": "yes"}}, "enabled"),
        ({"leaderElection": {"leaseDuration": 30}}, "leaseDuration"),
        ({"leaderElection": {"leaseDurationSeconds": 0}}, "leaseDurationSeconds"),
        ({"leaderElection": {"retryPeriodSeconds": "2s"}}, "retryPeriodSeconds"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "minAvailable"),
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
        # typos inside nested objects
        ({"image": {"tagg": "0.2.0"}}, "tagg"),
        ({"rateLimit": {"qsp": 5}}, "qsp"),
        ({"polling": {"maxSecond": 60}}, "maxSecond"),
        ({"emr": {"callTimeout": 10}}, "callTimeout"),
        ({"serviceAccount": {"automountToken": False}}, "automountToken"),
        ({"securityContext": {"readOnlyRootFilsystem": False}}, "readOnlyRootFilsystem"),
        ({"podSecurityContext": {"runAsUsr": 0}}, "runAsUsr"),
        ({"securityContext": {"capabilities": {"dorp": ["ALL"]}}}, "dorp"),
        ({"resources": {"limits": {"memroy": "1Gi"}}}, "memroy"),
        ({"tolerations": [{"key": "a", "operater": "Exists"}]}, "operater"),
        ({"affinity": {"nodeAfinity": {}}}, "nodeAfinity"),
        ({"extraEnv": [{"name": "A", "valu": "b"}]}, "valu"),
        ({"extraEnv": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "kye": "k"}}}]}, "kye"),
        ({"extraEnvFrom": [{"configMapRef": {"nam": "c"}}]}, "nam"),
        ({"extraVolumeMounts": [{"name": "a", "mountpath": "/a"}]}, "mountpath"),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologykey": "z", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            },
            "topologykey",
        ),
        ({"networkPolicy": {"metricsFrom": [{"podSelectr": {}}]}}, "podSelectr"),
        # bad new values
        ({"image": {"digest": "sha256:abc"}}, "digest"),
        ({"image": {"digest": "0123456789abcdef" * 4}}, "digest"),
        ({"revisionHistoryLimit": -1}, "revisionHistoryLimit"),
        ({"emr": {"callTimeoutSeconds": 0}}, "callTimeoutSeconds"),
        ({"serviceAccount": {"automount": "yes"}}, "automount"),
        ({"extraArgs": ["--log-level=DEBUG", 3]}, "extraArgs"),
        ({"extraEnv": [{"name": "A", "value": 5}]}, "value"),
        ({"extraEnv": [{"value": "b"}]}, "name"),
        ({"extraEnvFrom": [{"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}]}, "extraEnvFrom"),
        ({"extraVolumes": [{"name": "tmp", "emptyDir": {}}]}, "extraVolumes"),
        ({"extraVolumeMounts": [{"name": "a", "mountPath": "relative"}]}, "mountPath"),
        ({"commonLabels": {"app.kubernetes.io/name": "x"}}, "app.kubernetes.io/name"),
        ({"podLabels": {"app.kubernetes.io/component": "x"}}, "app.kubernetes.io/component"),
        ({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "z"}]}, "whenUnsatisfiable"),
        # impossible combinations
        ({"rrsa": {"enabled": True}}, "roleName"),
        (
            {
                "rrsa": {
                    "enabled": True,
                    "roleName": "emrops",
                    "roleArn": "acs:ram::1:role/x",
                    "oidcProviderArn": "acs:ram::1:oidc-provider/y",
                }
            },
            "roleArn",
        ),
        (
            {"credentials": {"existingSecret": "keys"}, "rrsa": {"enabled": True, "roleName": "r"}},
            "existingSecret",
        ),
        ({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}}, "serviceMonitor"),
        ({"emr": {"endpoint": "http://10.0.0.1"}}, "endpoint"),
        ({"emr": {"endpoint": "http://emr.cn-hangzhou.aliyuncs.com"}}, "endpoint"),
        ({"emr": {"endpoint": "http://127.0.0.1.nip.io"}}, "endpoint"),
        ({"emr": {"endpoint": "https://emr.example.com/api"}}, "endpoint"),
    ],
    ids=lambda v: str(v),
)
def test_schema_rejects_bad_values(helm: Helm, values: dict[str, Any], field: str) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode != 0
    assert "schema" in result.stderr and field in result.stderr, result.stderr


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://10.0.0.1",
        "http://emr.cn-hangzhou.aliyuncs.com",
        "http://127.0.0.1.nip.io",
        "https://emr.example.com/api",
    ],
)
def test_the_operator_rejects_the_endpoints_the_schema_rejects(endpoint: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint_override(endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://emr.cn-hangzhou.aliyuncs.com",
        "https://emr-vpc.cn-hangzhou.aliyuncs.com:443/",
        "emr.cn-hangzhou.aliyuncs.com",
        "http://127.0.0.1:18080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://[fd00::1]:8443",
    ],
)
def test_schema_accepts_what_the_operator_accepts(helm: Helm, endpoint: str) -> None:
    """The endpoint pattern agrees with the operator's own check on these."""
    parse_endpoint_override(endpoint)
    result = helm.run("template", "emrops", str(CHART), values={"emr": {"endpoint": endpoint}})
    assert result.returncode == 0, result.stderr
