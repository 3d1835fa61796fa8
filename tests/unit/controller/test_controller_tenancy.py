"""The tenancy policy: parsing, evaluation, the file read again on change, and the worker's refusal.

The worker tests run the real worker, machine and status writer against the in-memory fakes and
count what reached EMR and the Secrets: a refused run must cause no call and no Secret read.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from controller_fakes import FakeEmr, FakeStore, service_action, services, settle, wait_for_phase

from emrops.controller import settings as settings_module
from emrops.controller import tenancy
from emrops.controller.machine import Event
from emrops.controller.runner import Supervisor
from emrops.controller.tenancy import Grant, PolicyInvalid, TenancyPolicy, parse, refusal
from emrops.controller.tenancy_file import PolicyFile, problem

POLICY = """
operatorIdentity:
  - namespace: team-a
    regions: [cn-hangzhou]
    clusters: [c-aaa, "c-shared-*"]
  - namespace: "batch-?"
    regions: ["*"]
    clusters: ["*"]
secretCredentials:
  - namespace: team-a
    regions: [cn-hangzhou]
    clusters: ["*"]
"""


def policy(text: str = POLICY) -> TenancyPolicy:
    return parse(text, "policy.yaml")


# --- parsing --------------------------------------------------------------------------------


def test_a_policy_parses_into_grants() -> None:
    parsed = policy()
    assert parsed.operator_identity == (
        Grant("team-a", ("cn-hangzhou",), ("c-aaa", "c-shared-*")),
        Grant("batch-?", ("*",), ("*",)),
    )
    assert parsed.secret_credentials == (Grant("team-a", ("cn-hangzhou",), ("*",)),)
    assert parsed.source == "policy.yaml" and parsed.error is None


def test_absent_lists_mean_no_identity_and_unrestricted_secrets() -> None:
    parsed = policy("operatorIdentity: []")
    assert parsed.operator_identity == () and parsed.secret_credentials is None
    assert policy("secretCredentials: []").secret_credentials == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the document is empty"),
        ("operatorIdentity: [", "not valid YAML"),
        ("- namespace: a", "must be a mapping"),
        ("operatorIdentities: []", "unknown key operatorIdentities"),
        ("operatorIdentity: {team-a: {}}", "operatorIdentity must be a list"),
        ("operatorIdentity: [team-a]", "operatorIdentity[0] must be a mapping"),
        ("operatorIdentity: [{namespace: a, regions: ['*']}]", "operatorIdentity[0]: missing clusters"),
        (
            "operatorIdentity: [{namespace: a, regions: ['*'], clusters: ['*'], cluster: x}]",
            "operatorIdentity[0]: unknown cluster",
        ),
        ("operatorIdentity: [{namespace: a, regions: [], clusters: ['*']}]", "regions must be a non-empty"),
        ("operatorIdentity: [{namespace: a, regions: '*', clusters: ['*']}]", "regions must be a non-empty"),
        ("operatorIdentity: [{namespace: 'A', regions: ['*'], clusters: ['*']}]", "namespace: 'A' is not"),
        ("operatorIdentity: [{namespace: a, regions: ['*'], clusters: ['c-[ab]']}]", "clusters[0]: 'c-[ab]'"),
        ("operatorIdentity: [{namespace: a, regions: [7], clusters: ['*']}]", "regions[0]: 7 is not"),
        ("secretCredentials: [{namespace: '', regions: ['*'], clusters: ['*']}]", "namespace: '' is not"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_entry(text: str, expected: str) -> None:
    with pytest.raises(PolicyInvalid, match=expected.replace("[", r"\[").replace("*", r"\*")):
        parse(text, "p")


# --- evaluation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "region", "cluster", "allowed"),
    [
        ("team-a", "cn-hangzhou", "c-aaa", True),
        ("team-a", "cn-hangzhou", "c-shared-1", True),
        ("team-a", "cn-hangzhou", "c-bbb", False),  # not its cluster
        ("team-a", "cn-beijing", "c-aaa", False),  # its cluster id, another region
        ("team-a", "cn-hangzhou", "C-AAA", False),  # exact, case-sensitive
        ("team-a", "cn-hangzhou", "c-aaax", False),  # a name is not a prefix
        ("team-ab", "cn-hangzhou", "c-aaa", False),
        ("batch-1", "eu-west-1", "c-anything", True),
        ("batch-12", "eu-west-1", "c-anything", False),  # ? is one character
        ("team-b", "cn-hangzhou", "c-aaa", False),
    ],
)
def test_the_operator_identity_serves_only_granted_namespaces_and_clusters(
    namespace: str, region: str, cluster: str, allowed: bool
) -> None:
    assert (refusal(policy(), namespace, region, cluster, secret=False) is None) is allowed


def test_without_a_policy_the_operator_identity_serves_nobody_and_secrets_are_free() -> None:
    found = refusal(tenancy.CLOSED, "default", "cn-hangzhou", "c-1", secret=False)
    assert found is not None and "it grants this namespace nothing" in found.message
    assert refusal(tenancy.CLOSED, "default", "cn-hangzhou", "c-1", secret=True) is None


def test_secret_credentials_are_restricted_when_the_policy_lists_them() -> None:
    assert refusal(policy(), "team-a", "cn-hangzhou", "c-any", secret=True) is None
    # batch-1 may use the operator's identity anywhere but not a Secret of its own: separate lists.
    found = refusal(policy(), "batch-1", "cn-hangzhou", "c-any", secret=True)
    assert found is not None and "tenancy.secretCredentials" in found.message
    assert "name a credentials Secret" not in found.message  # it already does


def test_a_refusal_names_the_policy_the_grant_and_the_fix_but_no_other_namespace() -> None:
    found = refusal(policy(), "team-a", "cn-hangzhou", "c-bbb", secret=False)
    assert found is not None and not found.invalid
    text = found.message
    assert "emrops tenancy policy (policy.yaml)" in text
    assert "namespace team-a may not act on cluster c-bbb in region cn-hangzhou" in text
    assert "grants this namespace only regions cn-hangzhou / clusters c-aaa, c-shared-*" in text
    assert "tenancy.operatorIdentity" in text and "docs/security.md" in text
    assert "spec.credentialsSecretRef" in text and "emrops.io/run-requested-at" in text
    assert "Nothing was sent to EMR" in text
    assert "batch" not in text


def test_an_unreadable_policy_refuses_everything() -> None:
    broken = tenancy.unreadable("/etc/p.yaml", "not valid YAML: ...")
    for secret in (False, True):
        found = refusal(broken, "team-a", "cn-hangzhou", "c-aaa", secret=secret)
        assert found is not None and found.invalid
        assert "(/etc/p.yaml) cannot be read: not valid YAML" in found.message


# --- the file -------------------------------------------------------------------------------


def _rewrite(path: Path, text: str) -> None:
    """As the kubelet does: a new file moved into place (a new inode)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_the_file_is_read_again_when_it_changes_and_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("operatorIdentity: []")
    source = PolicyFile(path)
    assert source.current().operator_identity == ()
    assert source.current() is source.current()  # unchanged: not parsed again

    _rewrite(path, "operatorIdentity: [{namespace: team-a, regions: ['*'], clusters: ['*']}]")
    assert refusal(source.current(), "team-a", "r-1", "c-1", secret=False) is None

    with caplog.at_level(logging.ERROR, logger="emrops.controller"):
        _rewrite(path, "operatorIdentity: [{namespace: team-a}]")
        broken = source.current()
        source.current()
    assert broken.error is not None and "missing clusters" in broken.error
    assert refusal(broken, "team-a", "r-1", "c-1", secret=False) is not None
    assert refusal(broken, "team-a", "r-1", "c-1", secret=True) is not None
    assert len([r for r in caplog.records if "cannot be read" in r.getMessage()]) == 1, "logged once"

    path.unlink()
    gone = source.current()
    assert gone.error is not None and "FileNotFoundError" in gone.error

    _rewrite(path, "operatorIdentity: []")
    assert source.current().error is None


def test_the_flag_names_the_file_and_a_broken_one_is_a_problem(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    settings_module.add_arguments(parser)
    assert settings_module.from_args(parser.parse_args([]), {}).tenancy.policy_file is None
    from_env = settings_module.from_args(parser.parse_args([]), {"EMROPS_TENANCY_POLICY": "/p.yaml"})
    assert from_env.tenancy.policy_file == "/p.yaml"
    good = tmp_path / "good.yaml"
    good.write_text("operatorIdentity: []")
    assert problem(good) is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("operatorIdentity: yes")
    assert "--tenancy-policy / EMROPS_TENANCY_POLICY" in (problem(bad) or "")
    assert "operatorIdentity must be a list" in (problem(bad) or "")
    assert "No such file" in (problem(tmp_path / "missing.yaml") or "")


def test_emrops_run_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("operatorIdentity: [{namespace: team-a, regions: ['*']}]")
    result = subprocess.run(
        [sys.executable, "-m", "emrops", "run", "--tenancy-policy", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig")},
    )
    assert result.returncode == 2, result.stderr
    assert f"the tenancy policy {bad}" in result.stderr and "missing clusters" in result.stderr


# --- the worker -----------------------------------------------------------------------------


class CountingStore(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.secret_reads = 0

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        self.secret_reads += 1
        return await super().read_secret(namespace, name)


class CountingEmr(FakeEmr):
    """Counts every call of any kind (the base counts only some)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def run_application_action(self, request: Any, *, credentials: Any) -> Any:
        self.calls += 1
        return await super().run_application_action(request, credentials=credentials)

    async def get_operation(self, request: Any, *, credentials: Any) -> Any:
        self.calls += 1
        return await super().get_operation(request, credentials=credentials)

    async def iter_component_instances(self, request: Any, *, credentials: Any) -> Any:
        self.calls += 1
        async for item in super().iter_component_instances(request, credentials=credentials):
            yield item

    async def iter_nodes(self, request: Any, *, credentials: Any) -> Any:
        self.calls += 1
        async for item in super().iter_nodes(request, credentials=credentials):
            yield item


@pytest.fixture
def counting() -> CountingStore:
    store = CountingStore()
    store.secrets["creds"] = {"accessKeyId": "ak", "accessKeySecret": "sk"}
    return store


def _supervisor(store: FakeStore, emr: FakeEmr, events: list[Event], current: TenancyPolicy) -> Supervisor:
    return Supervisor(dataclasses.replace(services(store, emr, events), tenancy_policy=lambda: current))


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in obj["status"]["conditions"] if c["type"] == kind]
    return dict(found)


def _body(name: str, *, secret: str | None, cluster: str = "c-1", **spec: Any) -> dict[str, Any]:
    body = service_action(name, secret=secret)
    body["spec"].update(clusterId=cluster, **spec)
    return body


async def test_a_refused_run_fails_without_any_call_or_secret_read(counting: CountingStore) -> None:
    emr = CountingEmr()
    events: list[Event] = []
    granted = policy(
        "operatorIdentity: [{namespace: ns, regions: [cn-hangzhou], clusters: [c-1]}]\n"
        "secretCredentials: [{namespace: ns, regions: [cn-hangzhou], clusters: [c-1]}]"
    )
    supervisor = _supervisor(counting, emr, events, granted)
    for name, secret, cluster, extra in (
        ("identity", None, "c-2", {}),
        ("secret", "creds", "c-2", {}),
        ("suspended", None, "c-2", {"suspend": True}),  # no plan either: it reads EMR
    ):
        supervisor.observe("ADDED", counting.add(_body(name, secret=secret, cluster=cluster, **extra)))
    refused = [
        await wait_for_phase(counting, name, {"Failed"}) for name in ("identity", "secret", "suspended")
    ]
    await supervisor.stop()
    assert emr.calls == 0 and counting.secret_reads == 0
    for obj in refused:
        stalled = _condition(obj, "Stalled")
        assert stalled["status"] == "True" and stalled["reason"] == "TenancyDenied"
        assert "cluster c-2" in stalled["message"] and "tenancy policy" in obj["status"]["message"]
    assert "Failed" in [e.reason for e in events]


async def test_a_granted_run_goes_on_and_an_unreadable_policy_refuses(counting: CountingStore) -> None:
    emr = CountingEmr()
    granted = policy("operatorIdentity: [{namespace: ns, regions: ['*'], clusters: ['c-*']}]")
    supervisor = _supervisor(counting, emr, [], granted)
    supervisor.observe("ADDED", counting.add(_body("ok", secret=None)))
    await wait_for_phase(counting, "ok", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 1

    broken = _supervisor(counting, emr, [], tenancy.unreadable("p.yaml", "the document is empty"))
    broken.observe("ADDED", counting.add(_body("blocked", secret="creds")))
    obj = await wait_for_phase(counting, "blocked", {"Failed"})
    await broken.stop()
    assert _condition(obj, "Stalled")["reason"] == "TenancyPolicyInvalid" and len(emr.submits) == 1


async def test_a_revocation_stops_waiting_runs_and_a_granted_rerun_goes(counting: CountingStore) -> None:
    emr = CountingEmr()
    allow = policy("operatorIdentity: [{namespace: ns, regions: ['*'], clusters: ['*']}]")
    state = {"policy": allow}
    supervisor = Supervisor(
        dataclasses.replace(services(counting, emr, []), tenancy_policy=lambda: state["policy"])
    )
    counting.watch(supervisor)
    body = _body("waits", secret=None, suspend=True)
    supervisor.observe("ADDED", counting.add(body))
    await settle(lambda: bool((counting.objects["waits"].get("status") or {}).get("plan")), within=5.0)
    state["policy"] = tenancy.CLOSED
    counting.set_spec("waits", "suspend", False)  # the approval comes after the revocation
    obj = await wait_for_phase(counting, "waits", {"Failed"})
    assert _condition(obj, "Stalled")["reason"] == "TenancyDenied" and emr.submits == []

    state["policy"] = allow
    counting.annotate("waits", "emrops.io/run-requested-at", "again")
    await wait_for_phase(counting, "waits", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 1
