"""Known secret values, run through success and failure paths, never appear anywhere observable.

The emulator accepts an STS key with a recognisable secret and token; Secrets in the test
namespace carry it (and variants that fail: a wrong secret, an expired token, a missing key).
The operator itself gets a recognisable key through its environment. After successes, terminal
failures, an ambiguous failure (InternalError), retried errors and a cross-namespace reference,
every operator log line (DEBUG level), every Event, every ServiceAction (whole object) and the
metrics output are searched for each secret value, raw and base64-encoded.

A ``credentialsSecretRef`` naming a Secret that exists only in another namespace is refused: no
call is made with that Secret's key, and the status says which Secret is missing where.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest

from fixtures.suites import StartEmulator, StartOperator
from harness.kube import Kube
from harness.objects import CLUSTER_ID, component_restart, secret_manifest
from harness.processes import wait_for
from harness.status import TERMINAL_PHASES

pytestmark = pytest.mark.integration

MARK = secrets.token_hex(6)
AK_GOOD = f"LTAIgood{MARK}"
AK_EXPIRED = f"LTAIexpired{MARK}"
AK_ENV = f"LTAIenv{MARK}"
AK_OTHER_NS = f"LTAIotherns{MARK}"
SECRET_GOOD = f"SECRET-good-{MARK}-do-not-leak"
TOKEN_GOOD = f"STSTOKEN-good-{MARK}-do-not-leak"
SECRET_WRONG = f"SECRET-wrong-{MARK}-do-not-leak"
SECRET_EXPIRED = f"SECRET-expired-{MARK}-do-not-leak"
TOKEN_EXPIRED = f"STSTOKEN-expired-{MARK}-do-not-leak"
SECRET_ENV = f"SECRET-env-{MARK}-do-not-leak"
SECRET_OTHER_NS = f"SECRET-otherns-{MARK}-do-not-leak"
SECRET_MISSING_KEY_TOKEN = f"STSTOKEN-missingkey-{MARK}-do-not-leak"
SENSITIVE = [
    SECRET_GOOD,
    TOKEN_GOOD,
    SECRET_WRONG,
    SECRET_EXPIRED,
    TOKEN_EXPIRED,
    SECRET_ENV,
    SECRET_OTHER_NS,
    SECRET_MISSING_KEY_TOKEN,
]


def forms(value: str) -> list[str]:
    """The value as it could show up: raw, base64 (Secret data), and a long-enough prefix."""
    return [value, base64.b64encode(value.encode()).decode(), value[: len(value) - 12]]


def find_leaks(text: str, where: str) -> list[str]:
    return [f"{where}: {form!r}" for value in SENSITIVE for form in forms(value) if form in text]


SCENARIO = {
    "access_keys": [
        {"id": AK_GOOD, "secret": SECRET_GOOD, "security_token": TOKEN_GOOD},
        {"id": AK_EXPIRED, "secret": SECRET_EXPIRED, "security_token": TOKEN_EXPIRED, "expired": True},
        {"id": AK_ENV, "secret": SECRET_ENV},
        {"id": AK_OTHER_NS, "secret": SECRET_OTHER_NS},
    ],
}


def test_secret_values_appear_in_no_log_event_status_or_metric(
    control_plane: Any, kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    namespace = kube.namespace
    emulator = start_emulator(SCENARIO)
    other_ns = control_plane.create_namespace(prefix="other-")
    Kube(control_plane, other_ns).apply(
        secret_manifest("elsewhere", {"accessKeyId": AK_OTHER_NS, "accessKeySecret": SECRET_OTHER_NS}),
    )
    kube.apply(
        secret_manifest(
            "good", {"accessKeyId": AK_GOOD, "accessKeySecret": SECRET_GOOD, "securityToken": TOKEN_GOOD}
        ),
        secret_manifest(
            "wrong", {"accessKeyId": AK_GOOD, "accessKeySecret": SECRET_WRONG, "securityToken": TOKEN_GOOD}
        ),
        secret_manifest(
            "expired",
            {"accessKeyId": AK_EXPIRED, "accessKeySecret": SECRET_EXPIRED, "securityToken": TOKEN_EXPIRED},
        ),
        secret_manifest("missing-key", {"accessKeyId": AK_GOOD, "securityToken": SECRET_MISSING_KEY_TOKEN}),
    )
    operator = start_operator(emulator, credentials=(AK_ENV, SECRET_ENV))

    # Success paths: a Secret with an STS token, and the operator's own (environment) key.
    first = [
        component_restart("ok-secret", "YARN", "NodeManager", "good"),
        component_restart("ok-env", "HDFS", "DataNode"),
        # Terminal failures: a wrong secret, an expired token, a Secret without the secret key.
        component_restart("bad-signature", "HIVE", "HiveServer2", "wrong"),
        component_restart("expired-token", "HIVE", "HiveMetastore", "expired"),
        component_restart("missing-key", "SPARK", "SparkHistoryServer", "missing-key"),
        # A Secret that exists only in another namespace.
        component_restart("cross-namespace", "ZOOKEEPER", "ZooKeeper", "elsewhere"),
    ]
    kube.apply(*first)
    kube.wait_phase(["ok-secret", "ok-env"], frozenset({"Succeeded"}))
    kube.wait_phase(["bad-signature", "expired-token"], frozenset({"Failed"}))
    # A Secret without accessKeySecret, or one in another namespace: the run waits (the user may
    # fix the Secret) and says why in its status, without ever calling EMR.
    wait_for(
        lambda: all(
            hint in ((kube.all()[name].get("status") or {}).get("message") or "")
            for name, hint in (("missing-key", "accessKeySecret"), ("cross-namespace", "elsewhere"))
        ),
        timeout=120,
        what="the Secret problems to be reported in status",
    )

    # An ambiguous failure (InternalError on submit) and retried errors (GetOperation 503s).
    emulator.faults({"action": "RunApplicationAction", "code": "InternalError", "count": 1})
    kube.apply(
        component_restart("ambiguous", "HDFS", "NameNode", "good"),
    )
    kube.wait_phase(["ambiguous"], frozenset({"Unknown"}))
    emulator.faults({"action": "GetOperation", "code": "ServiceUnavailable", "count": 3})
    kube.apply(
        component_restart("retried", "YARN", "ResourceManager", "good"),
    )
    kube.wait_phase(["retried"], frozenset({"Succeeded"}))

    # The cross-namespace reference: never used, and the status says why.
    objects = kube.all()
    status = objects["cross-namespace"].get("status") or {}
    assert status.get("phase") not in ("Running", "Succeeded", "Submitting"), status
    assert "elsewhere" in json.dumps(status), status
    assert not status.get("operationId"), status
    calls = emulator.calls()
    assert not [c for c in calls if c.get("access_key_id") == AK_OTHER_NS], (
        "the other namespace's key was used"
    )
    assert not [c for c in calls if (c.get("params") or {}).get("Description") == "cross-namespace"]

    # Now search everything observable.
    leaks: list[str] = []
    leaks += find_leaks(operator.log_text(), "operator log")
    for ns in (namespace, other_ns):
        leaks += find_leaks(
            json.dumps(Kube(control_plane, ns).json("serviceactions")),
            f"ServiceActions in {ns}",
        )
    leaks += find_leaks(json.dumps(kube.json("events", "-A", namespaced=False)), "core/v1 Events")
    leaks += find_leaks(
        json.dumps(kube.json("events.events.k8s.io", "-A", namespaced=False)), "events.k8s.io Events"
    )
    metrics = operator.metrics()
    assert metrics.strip(), "the operator served no metrics"
    leaks += find_leaks(metrics, "metrics")
    assert not leaks, leaks

    # The searches looked at something real: logs and events mention the objects, in every path.
    log = operator.log_text()
    for name in ("ok-secret", "bad-signature", "expired-token", "ambiguous", "cross-namespace"):
        assert name in log, f"the operator log never mentions {name}"
    events = json.dumps(kube.json("events"))
    assert "bad-signature" in events and "ok-secret" in events
    final = kube.all()
    assert all((o.get("status") or {}).get("phase") in TERMINAL_PHASES | {"Pending"} for o in final.values())
    assert final["missing-key"]["status"]["phase"] == "Pending", final["missing-key"]["status"]
    assert final["bad-signature"]["status"].get("lastError", {}).get("code"), final["bad-signature"]["status"]
    assert CLUSTER_ID in json.dumps(final["ok-secret"]["spec"])
