"""Two operator processes with ``--leader-elect``: one leads, the other stands by and takes over.

Against the real apiserver's coordination.k8s.io Leases: only the leader works (only its log shows
ServiceAction activity); when the leader is SIGKILLed mid-run, the standby takes the Lease within
a lease duration and finishes the run without a second RunApplicationAction; when a leader stops
cleanly it releases the Lease and the standby takes over within a retry period or two.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import component_scope, tagged_action
from harness.operator import Operator, OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4, 3, 0.5
TOOK = "took the lease"


def elected(operators: OperatorFactory, kube: Kube) -> Operator:
    return operators(
        "--leader-elect", "true",
        "--leader-election-namespace", kube.namespace,
        "--leader-election-id", "emrops-test",
        "--leader-elect-lease-duration", str(LEASE_DURATION),
        "--leader-elect-renew-deadline", str(RENEW_DEADLINE),
        "--leader-elect-retry-period", str(RETRY_PERIOD),
    )  # fmt: skip


def holder(kube: Kube) -> str:
    out = kube.kubectl("get", "lease", "emrops-test", "-o", "json", check=False)
    if out.returncode != 0:
        return ""
    lease: dict[str, Any] = json.loads(out.stdout)
    return str(lease.get("spec", {}).get("holderIdentity") or "")


def wait(what: str, check: Any, timeout: float) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def slow_rolling(name: str) -> dict[str, Any]:
    """A rolling restart of the four DataNodes, about 2 s apart at the emulator's time scale."""
    return tagged_action(
        name, "restart", component_scope("HDFS", "DataNode"), rollingExecute=True, batchSize=1, interval=200
    )


def test_the_standby_takes_over_a_killed_leader_without_a_second_call(
    kube: Kube, module_emulator: Emulator, operators: OperatorFactory
) -> None:
    kube.create_secret()
    first = elected(operators, kube)
    wait("the first operator to lead", lambda: bool(first.grep(TOOK)), 30)
    second = elected(operators, kube)
    time.sleep(2 * RETRY_PERIOD)
    assert not second.grep(TOOK), "two leaders"

    kube.create(slow_rolling("le-a"))
    kube.wait_phase(["le-a"], ["Running"], timeout=60)
    assert not second.grep("le-a"), "the standby worked on a ServiceAction"
    first.kill()
    took = wait("the standby to take the lease", lambda: bool(second.grep(TOOK)), LEASE_DURATION + 10)
    assert took <= LEASE_DURATION + 2 * RETRY_PERIOD + 2, f"the takeover took {took:.1f}s"

    obj = kube.wait_phase(["le-a"], timeout=120)["le-a"]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)
    ok = module_emulator.ok_runs("le-a")
    assert len(ok) == 1 and obj["status"]["operationId"] == ok[0]["operation_id"]


def test_a_leader_that_stops_cleanly_hands_over_at_once(kube: Kube, operators: OperatorFactory) -> None:
    first = elected(operators, kube)
    wait("a leader", lambda: bool(first.grep(TOOK)) or bool(holder(kube)), 30)
    leader_name = holder(kube)
    second = elected(operators, kube)
    time.sleep(1)
    assert holder(kube) == leader_name
    first.stop()  # SIGTERM
    assert first.grep("released the lease")
    took = wait("the standby to take the lease", lambda: bool(second.grep(TOOK)), LEASE_DURATION + 10)
    assert took < LEASE_DURATION, f"a released lease took {took:.1f}s to change hands"
