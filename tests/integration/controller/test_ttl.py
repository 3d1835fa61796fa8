"""spec.ttlSecondsAfterFinished end to end: the real apiserver, the emulator and `emrops run`.

A finished run is deleted once its TTL has passed; the TTL may be set on a run that has already
finished; paired with notAfter, a GitOps re-creation of the deleted object does nothing.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from emrops.api.status import format_time, parse_time
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import component_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def operator(kube: Kube, operator_factory: OperatorFactory) -> None:
    kube.create_secret()
    operator_factory()


def wait_gone(kube: Kube, name: str, timeout: float = 60) -> float:
    """Wait until ``name`` no longer exists; returns when (time.time())."""
    kube.wait_until(f"{name} deleted", lambda objs: name not in objs, timeout=timeout, interval=0.2)
    return time.time()


def test_a_finished_run_is_deleted_after_its_ttl(kube: Kube, module_emulator: Emulator) -> None:
    name = "ttl-deleted"
    kube.create(
        tagged_action(name, "restart", component_scope("HIVE", "HiveServer2"), ttlSecondsAfterFinished=3)
    )
    done = kube.wait_phase([name], timeout=60)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    finished = parse_time(done["status"]["finishedAt"])
    assert finished is not None
    gone_at = wait_gone(kube, name)
    # Not before the TTL (finishedAt is to the second, hence the 1 s of slack), and soon after.
    assert finished.timestamp() + 3 - 1 <= gone_at <= finished.timestamp() + 3 + 15
    assert len(module_emulator.ok_runs(name)) == 1


def test_a_ttl_set_after_the_run_finished_applies(kube: Kube) -> None:
    name = "ttl-added-later"
    kube.create(tagged_action(name, "restart", component_scope("HIVE", "HiveServer2")))
    done = kube.wait_phase([name], timeout=60)[name]
    assert done["status"]["phase"] == "Succeeded", summarize(done)
    time.sleep(2)
    assert name in kube.all(), "no TTL: kept"
    kube.kubectl(
        "patch",
        f"serviceactions.emrops.io/{name}",
        "--type=merge",
        "-p",
        '{"spec":{"ttlSecondsAfterFinished":1}}',
    )
    wait_gone(kube, name)


def test_another_spec_change_is_still_refused(kube: Kube) -> None:
    name = "ttl-immutable-rest"
    kube.create(
        tagged_action(name, "restart", component_scope("HIVE", "HiveServer2"), ttlSecondsAfterFinished=3600)
    )
    refused = kube.kubectl(
        "patch",
        f"serviceactions.emrops.io/{name}",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"ttlSecondsAfterFinished": 60, "clusterId": "c-other"}}),
        check=False,
    )
    assert refused.returncode != 0 and "immutable" in refused.stderr, refused.stderr


def test_ttl_with_not_after_a_gitops_recreation_after_the_deletion_does_nothing(
    kube: Kube, module_emulator: Emulator
) -> None:
    name = "ttl-gitops"
    closes = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    manifest = tagged_action(
        name,
        "restart",
        component_scope("HIVE", "HiveMetastore"),
        notAfter=format_time(closes),
        ttlSecondsAfterFinished=0,
    )
    kube.create(copy.deepcopy(manifest))
    wait_gone(kube, name)
    assert len(module_emulator.ok_runs(name)) == 1
    while datetime.now(UTC) < closes + timedelta(seconds=1):
        time.sleep(0.5)

    # Argo CD or Flux sees the object missing and creates it again from Git.
    kube.create(copy.deepcopy(manifest))
    again = kube.wait_until(
        "the re-created copy to fail WindowExpired (or be deleted after it)",
        lambda objs: name not in objs or (objs[name].get("status") or {}).get("phase") == "Failed",
        interval=0.1,
    )
    if name in again:
        assert condition(again[name], "Stalled")["reason"] == "WindowExpired", summarize(again[name])
    wait_gone(kube, name)
    assert len(module_emulator.ok_runs(name)) == 1
