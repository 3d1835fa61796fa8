"""Smoke test of the whole product: real apiserver, emulator subprocess, ``emrops run`` subprocess.

One ServiceAction reaches Succeeded with the emulator's operation id, exactly one
RunApplicationAction is made, and ``kubectl wait --for=condition=Ready`` returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emrops.controlplane import ControlPlane
from harness.objects import service_action
from harness.operator import Operator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def operator(
    control_plane: ControlPlane, emulator: Any, namespace: str, tmp_path: Path
) -> Iterator[Operator]:
    """``emrops run`` against the control plane and the emulator, watching ``namespace``."""
    with Operator(
        tmp_path,
        control_plane.kubeconfig,
        emulator.url,
        namespaces=[namespace],
        args=["--log-level", "DEBUG"],
    ) as op:
        yield op


def _apply(cp: ControlPlane, namespace: str, manifest: dict[str, Any]) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def _get(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    out = cp.kubectl("get", "serviceaction", name, "-n", namespace, "-o", "json").stdout
    found: dict[str, Any] = json.loads(out)
    return found


def test_a_service_action_runs_once_and_becomes_ready(
    control_plane: ControlPlane, emulator: Any, namespace: str, operator: Operator
) -> None:
    control_plane.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "credentials-secret.yaml"))
    _apply(
        control_plane,
        namespace,
        service_action("restart-datanodes", rollingExecute=True, batchSize=2, interval=1),
    )
    waited = control_plane.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "serviceaction/restart-datanodes", "--timeout=90s",
        check=False,
    )  # fmt: skip
    obj = _get(control_plane, namespace, "restart-datanodes")
    assert waited.returncode == 0, (waited.stderr, obj.get("status"), operator.tail(60))

    status = obj["status"]
    assert status["phase"] == "Succeeded"
    calls = [c for c in emulator.calls() if c.get("action") == "RunApplicationAction"]
    assert len(calls) == 1, calls
    operations = emulator.state()
    assert status["operationId"] in json.dumps(operations)
    assert status["attempts"] == 1 and status["run"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Stalled"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "False"
    assert all(c["observedGeneration"] == obj["metadata"]["generation"] for c in conditions.values())
    # No finalizer and no kopf bookkeeping on our objects.
    assert not obj["metadata"].get("finalizers")
    assert not any(k.startswith("kopf.zalando.org") for k in obj["metadata"].get("annotations", {}))

    # Events were posted for the transitions that matter (Submitting stays in status and the log,
    # and the acceptance is written with the intent: a clean run posts two, docs/operator.md).
    deadline = time.monotonic() + 15
    reasons: set[str] = set()
    while time.monotonic() < deadline and "Succeeded" not in reasons:
        events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)
        reasons = {e.get("reason") for e in events["items"]}
        time.sleep(0.5)
    assert {"Submitted", "Succeeded"} <= reasons, reasons
    assert not {"Submitting", "Pending"} & reasons, reasons
