"""A missing credentials Secret (or key) gives a clear status, and the run proceeds once fixed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration


def mentions(obj: dict[str, Any], word: str) -> bool:
    """Whether the status says ``word`` in a condition reason or message, the message or lastError."""
    st = obj.get("status") or {}
    texts = [st.get("message") or "", str(st.get("lastError") or "")]
    for cond in st.get("conditions") or []:
        texts += [cond.get("reason") or "", cond.get("message") or ""]
    return any(word in t for t in texts)


def test_missing_secret_then_created(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    name = "cred-missing-secret"
    obj = tagged_action(
        name,
        "restart",
        instance_scope("HDFS", "DataNode", CORES[0]),
        credentialsSecretRef={"name": "late-credentials"},
    )
    operator_factory()
    kube.create(obj)

    objs = kube.wait_until(
        "CredentialsMissing", lambda o: mentions(o.get(name, {}), "CredentialsMissing"), timeout=60
    )
    st = objs[name]["status"]
    assert st.get("phase") not in ("Succeeded", "Running"), summarize(objs[name])
    assert mentions(objs[name], "late-credentials"), "the status must name the missing Secret"
    assert condition(objs[name], "Ready").get("status") == "False"
    assert module_emulator.run_calls(name) == [], "nothing may be called without credentials"

    kube.create_secret("late-credentials")
    done = kube.wait_phase([name], timeout=120)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    assert len(module_emulator.ok_runs(name)) == 1


def test_missing_key_then_fixed(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    name = "cred-missing-key"
    kube.kubectl(
        "create", "secret", "generic", "half-credentials", f"--from-literal=accessKeyId={ACCESS_KEY_ID}"
    )
    obj = tagged_action(
        name,
        "restart",
        instance_scope("HDFS", "DataNode", CORES[1]),
        credentialsSecretRef={"name": "half-credentials"},
    )
    kube.create(obj)

    objs = kube.wait_until(
        "the missing key to be reported", lambda o: mentions(o.get(name, {}), "accessKeySecret"), timeout=60
    )
    assert objs[name]["status"].get("phase") not in ("Succeeded", "Running"), summarize(objs[name])
    assert module_emulator.run_calls(name) == []

    kube.kubectl(
        "patch",
        "secret",
        "half-credentials",
        "--type=merge",
        "-p",
        json.dumps({"stringData": {"accessKeySecret": ACCESS_KEY_SECRET}}),
    )
    done = kube.wait_phase([name], timeout=120)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    assert len(module_emulator.ok_runs(name)) == 1
    assert ACCESS_KEY_SECRET not in str(done["status"])
