"""Terminal EMR errors end in Failed with the EMR code and a useful message, and stop calling.

Bad credentials, an unknown cluster and targets the cluster does not have are all specs the
CRD accepts and EMR refuses. Retrying cannot help, so the operator must fail at once, say why in
lastError and the Stalled condition, and not keep calling EMR.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.calls import call_action, call_param
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import (
    ACCESS_KEY_SECRET,
    CLUSTER_ID,
    CORES,
    app_scope,
    component_scope,
    instance_scope,
    tagged_action,
)
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration

CREDENTIAL_CODES = {"IncompleteSignature", "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound"}


# name -> (object, the EMR codes that are right for it, a word its message must contain)
CASES: dict[str, tuple[dict[str, Any], set[str], str]] = {
    "e-wrong-secret": (
        tagged_action(
            "e-wrong-secret", "restart", app_scope("HDFS"), credentialsSecretRef={"name": "wrong-secret"}
        ),
        {"IncompleteSignature", "SignatureDoesNotMatch"},
        "accessKeySecret",
    ),
    "e-unknown-key": (
        tagged_action(
            "e-unknown-key", "restart", app_scope("HDFS"), credentialsSecretRef={"name": "unknown-key"}
        ),
        {"InvalidAccessKeyId.NotFound"},
        "accessKeyId",
    ),
    "e-unknown-cluster": (
        tagged_action("e-unknown-cluster", "restart", app_scope("HDFS"), clusterId="c-0000000000dead"),
        {"ResourceNotFound"},
        "c-0000000000dead",
    ),
    "e-unknown-component": (
        tagged_action("e-unknown-component", "restart", component_scope("HDFS", "JournalNodeX")),
        {"ResourceNotFound"},
        "JournalNodeX",
    ),
    "e-unknown-node": (
        tagged_action("e-unknown-node", "stop", instance_scope("HDFS", "DataNode", "i-bp1nosuchnode00")),
        {"ResourceNotFound"},
        "i-bp1nosuchnode00",
    ),
    # (APPLICATION scope with a component list, EMR's ConflictParameters, no longer reaches the
    # operator: the CRD refuses it at admission, tests/integration/test_crd.py.)
}
NAMES = list(CASES)


@pytest.fixture(scope="module")
def failed(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> dict[str, dict[str, Any]]:
    kube.create_secret()
    kube.create_secret("wrong-secret", key_secret="not-the-secret")
    kube.create_secret("unknown-key", key_id="LTAI-no-such-key", key_secret="whatever")
    operator_factory()
    kube.create(*(case[0] for case in CASES.values()))
    return kube.wait_phase(NAMES, timeout=120)


@pytest.mark.parametrize("name", NAMES)
def test_fails_with_emr_code_and_message(name: str, failed: dict[str, dict[str, Any]]) -> None:
    obj = failed[name]
    st = obj["status"]
    _, codes, word = CASES[name]
    assert st["phase"] == "Failed", summarize(obj)
    error = st.get("lastError") or {}
    assert error.get("code") in codes, summarize(obj)
    assert error.get("httpStatus") in (400, 404), error
    assert error.get("message")

    stalled = condition(obj, "Stalled")
    assert stalled.get("status") == "True", summarize(obj)
    assert condition(obj, "Ready").get("status") == "False"
    assert condition(obj, "Reconciling").get("status") in (None, "False")
    # A useful message names what is wrong: the code and the field, credential or object to fix.
    message = stalled.get("message") or ""
    assert error["code"] in message or stalled.get("reason"), stalled
    assert word in message or word in (error.get("message") or ""), stalled
    # No secret ever appears in status.
    assert "not-the-secret" not in str(st) and ACCESS_KEY_SECRET not in str(st)


def test_nothing_retries_forever(failed: dict[str, dict[str, Any]], module_emulator: Emulator) -> None:
    """After the failures, several poll cycles pass without a single new call to EMR."""
    before = module_emulator.calls()
    time.sleep(6)  # six times --poll-max-seconds
    after = module_emulator.calls()
    assert len(after) == len(before), [
        (call_action(c), call_param(c, "ClusterId")) for c in after[len(before) :]
    ]

    for name in NAMES:
        runs = module_emulator.run_calls(name)
        # Terminal errors are not retried (zero calls is fine if a read API refused first).
        assert len(runs) <= 2, f"{name}: {len(runs)} RunApplicationAction calls"


def test_the_good_secret_still_works(
    kube: Kube, failed: dict[str, dict[str, Any]], module_emulator: Emulator
) -> None:
    """Control: the same operator succeeds with the right keys on the right cluster."""
    kube.create(tagged_action("e-control", "restart", instance_scope("HDFS", "DataNode", CORES[3])))
    obj = kube.wait_phase(["e-control"], timeout=90)["e-control"]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    assert len(module_emulator.ok_runs("e-control")) == 1
    assert all(call_param(c, "ClusterId") == CLUSTER_ID for c in module_emulator.ok_runs())
