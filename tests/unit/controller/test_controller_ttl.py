"""spec.ttlSecondsAfterFinished: when a finished run is due for deletion, and the reaper's timers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emrops.api.conditions import with_conditions
from emrops.api.constants import ACKNOWLEDGED_AT, RUN_REQUESTED_AT
from emrops.api.reasons import Reason
from emrops.api.status import OperationStatus, Phase, RunStatus, format_time
from emrops.controller.reaper import Reaper
from emrops.controller.ttl import expires_at

ENDED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def finished(
    phase: Phase = Phase.SUCCEEDED,
    *,
    ttl: int | None = 60,
    reason: str | None = None,
    annotations: dict[str, str] | None = None,
    operation_state: str | None = None,
    **changes: Any,
) -> dict[str, Any]:
    status = RunStatus(
        phase=phase, finished_at=format_time(ENDED), run=1, observed_generation=1, reason=reason, **changes
    )
    if operation_state is not None:
        status = status.evolve(operation_id="op-1", operation=OperationStatus(state=operation_state))
    spec: dict[str, Any] = {"regionId": "cn-hangzhou", "clusterId": "c-1"}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {
        "metadata": {
            "namespace": "ns",
            "name": "run",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 1,
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": with_conditions(status, generation=1, now=ENDED).to_dict(),
    }


def test_a_succeeded_or_failed_run_is_due_its_ttl_after_it_finished() -> None:
    assert expires_at(finished(Phase.SUCCEEDED)) == ENDED + timedelta(seconds=60)
    assert expires_at(finished(Phase.FAILED, reason=Reason.OPERATION_FAILED)) == ENDED + timedelta(seconds=60)
    assert expires_at(finished(ttl=0)) == ENDED


def test_never_due_without_a_ttl_or_before_the_end() -> None:
    assert expires_at(finished(ttl=None)) is None
    for phase in (Phase.PENDING, Phase.QUEUED, Phase.SUBMITTING, Phase.RUNNING, Phase.SUSPENDED):
        assert expires_at(finished(phase)) is None, phase


def test_unknown_is_not_finished_for_the_ttl_even_when_acknowledged() -> None:
    assert expires_at(finished(Phase.UNKNOWN, reason=Reason.OUTCOME_UNKNOWN)) is None
    acknowledged = finished(
        Phase.UNKNOWN,
        reason=Reason.OUTCOME_UNKNOWN,
        acknowledged_at="x",
        acknowledged_run=1,
        annotations={ACKNOWLEDGED_AT: "x"},
    )
    assert expires_at(acknowledged) is None


def test_a_run_followed_past_its_deadline_is_kept_until_its_operation_ends() -> None:
    followed = finished(Phase.FAILED, reason=Reason.DEADLINE_EXCEEDED, operation_state="RUNNING")
    assert expires_at(followed) is None
    ended = finished(Phase.FAILED, reason=Reason.DEADLINE_EXCEEDED, operation_state="FAILED")
    assert expires_at(ended) == ENDED + timedelta(seconds=60)


def test_a_requested_rerun_or_an_unobserved_spec_change_keeps_the_object() -> None:
    assert expires_at(finished(annotations={RUN_REQUESTED_AT: "again"})) is None
    changed = finished()
    changed["metadata"]["generation"] = 2  # the TTL itself was edited: the worker writes it first
    assert expires_at(changed) is None


class Deletes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.event = asyncio.Event()

    async def __call__(self, namespace: str, name: str, uid: str, version: str) -> bool:
        self.calls.append((namespace, name, uid, version))
        self.event.set()
        return True


async def test_the_reaper_deletes_a_due_object_with_its_uid_and_version_as_preconditions() -> None:
    deletes = Deletes()
    reaper = Reaper(deletes, clock=lambda: ENDED + timedelta(seconds=61))
    reaper.observe("MODIFIED", finished())
    await asyncio.wait_for(deletes.event.wait(), 5)
    assert deletes.calls == [("ns", "run", "u-1", "7")]
    await reaper.stop()


async def test_the_reaper_waits_for_the_ttl_and_forgets_an_object_that_changed_or_went() -> None:
    now = [ENDED]
    deletes = Deletes()
    reaper = Reaper(deletes, clock=lambda: now[0])
    reaper.observe("MODIFIED", finished(ttl=3600))
    await asyncio.sleep(0.05)
    assert deletes.calls == [] and reaper.pending == 1
    reaper.observe("MODIFIED", finished(annotations={RUN_REQUESTED_AT: "again"}))  # a re-run: not due
    assert reaper.pending == 0
    reaper.observe("MODIFIED", finished(ttl=3600))
    reaper.observe("DELETED", finished(ttl=3600))
    assert reaper.pending == 0
    await asyncio.sleep(0.05)
    assert deletes.calls == []
    await reaper.stop()


async def test_the_reaper_retries_a_failed_delete() -> None:
    attempts: list[int] = []
    done = asyncio.Event()

    async def flaky(namespace: str, name: str, uid: str, version: str) -> bool:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("apiserver unavailable")
        done.set()
        return True

    reaper = Reaper(flaky, clock=lambda: ENDED + timedelta(hours=1), retry_seconds=0.01)
    reaper.observe(None, finished())
    await asyncio.wait_for(done.wait(), 5)
    assert len(attempts) == 2
    await reaper.stop()


@pytest.mark.parametrize("bad", [True, -1, "60"])
def test_a_malformed_ttl_counts_as_none(bad: Any) -> None:
    body = finished()
    body["spec"]["ttlSecondsAfterFinished"] = bad
    assert expires_at(body) is None
