"""Regression tests for the interleavings issue 9 found, one or more per hole, with the fakes.

Each test builds the interleaving that broke the old worker (a stale body, a lagging or missed
watch event, a vanished object, a shutdown mid-call) and checks the promise: one accepted
RunApplicationAction per run, overlapping runs one at a time in queue order, no worker left
spinning. The deterministic simulation (tests/simulation) searches interleavings at random;
these pin the ones we know.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime

import pytest
from controller_fakes import (
    FakeEmr,
    FakeStore,
    GatedLimiter,
    created_at,
    service_action,
    services,
    wait_for_phase,
)

from emrops.controller.runner import Supervisor


@pytest.mark.parametrize("watch_delivers", [True, False], ids=["newer bodies delivered", "watch lagging"])
async def test_a_worker_parked_for_a_token_never_submits_a_run_another_replica_finished(
    store: FakeStore, watch_delivers: bool
) -> None:
    """Hole 1: the decision was made from V1, the write went out over a newer body: 2 calls."""
    emr = FakeEmr()
    gated = services(store, emr, [])
    gated.limiter = GatedLimiter()
    slow, fast = Supervisor(gated), Supervisor(services(store, emr, []))
    body = store.add(service_action())
    slow.observe("ADDED", copy.deepcopy(body))
    await asyncio.wait_for(gated.limiter.waiting.wait(), 5)  # slow's worker waits for its token
    fast.observe("ADDED", copy.deepcopy(body))
    done = await wait_for_phase(store, "sa", {"Succeeded"})
    if watch_delivers:
        slow.observe("MODIFIED", copy.deepcopy(done))
    gated.limiter.open.set()
    await asyncio.sleep(0.3)
    await asyncio.gather(slow.stop(), fast.stop())
    assert len(emr.submits) == 1
    assert store.objects["sa"]["status"]["operationId"] == "op-1"
    assert store.objects["sa"]["status"]["phase"] == "Succeeded"


async def test_submitted_at_is_stamped_after_the_token_wait(store: FakeStore) -> None:
    emr = FakeEmr()
    gated = services(store, emr, [])
    gated.limiter = GatedLimiter()
    supervisor = Supervisor(gated)
    supervisor.observe("ADDED", store.add(service_action()))
    await asyncio.wait_for(gated.limiter.waiting.wait(), 5)
    await asyncio.sleep(1.1)  # longer than the second-resolution of submittedAt
    before = gated.clock()
    gated.limiter.open.set()
    obj = await wait_for_phase(store, "sa", {"Running", "Succeeded"})
    await supervisor.stop()
    submitted = datetime.fromisoformat(obj["status"]["submittedAt"].replace("Z", "+00:00"))
    assert submitted >= before


async def test_overlapping_objects_created_in_the_same_second_run_one_at_a_time(store: FakeStore) -> None:
    """Hole 2: each worker saw its own fresh startTime and the other's as not yet accepted."""
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    same_second = "2025-01-01T00:00:01Z"
    # Only the ADDED events reach the supervisor: its view of the other's status never catches up.
    supervisor.observe("ADDED", store.add(created_at("z", same_second)))
    supervisor.observe("ADDED", store.add(created_at("a", same_second)))
    first = await wait_for_phase(store, "a", {"Running"})
    await asyncio.sleep(0.3)
    assert len(emr.submits) == 1, "both overlapping runs were submitted"
    assert store.objects["z"]["status"]["phase"] == "Queued"
    assert store.objects["z"]["status"]["waitingFor"] == ["ns/a"]
    emr.finish(first["status"]["operationId"])
    await wait_for_phase(store, "a", {"Succeeded"})
    supervisor.observe("MODIFIED", copy.deepcopy(store.objects["a"]))
    await wait_for_phase(store, "z", {"Running"})
    emr.finish(store.objects["z"]["status"]["operationId"])
    await wait_for_phase(store, "z", {"Succeeded"})
    await supervisor.stop()
    assert emr.most_running == 1


async def test_an_intent_written_over_a_stale_queue_is_withdrawn_without_a_call(store: FakeStore) -> None:
    """The watch has not shown an older overlapping run yet; the consistent re-check has."""
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.add(created_at("old", "2025-01-01T00:00:01Z"))  # never reaches this supervisor's watch
    supervisor.observe("ADDED", store.add(created_at("young", "2025-01-01T00:00:05Z")))
    young = await wait_for_phase(store, "young", {"Queued"})
    await supervisor.stop()
    assert emr.submits == []
    assert young["status"]["waitingFor"] == ["ns/old"]
    assert young["status"]["attempts"] == 0 and "submittedAt" not in young["status"]


async def test_a_worker_whose_object_vanished_stops_and_frees_the_queue(store: FakeStore) -> None:
    """Hole 3: on 404 the worker returned, the supervisor restarted it from the stale body, forever."""
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    supervisor.observe("ADDED", store.add(created_at("gone", "2025-01-01T00:00:01Z")))
    running = await wait_for_phase(store, "gone", {"Running"})
    supervisor.observe("ADDED", store.add(created_at("next", "2025-01-01T00:00:02Z")))
    await wait_for_phase(store, "next", {"Queued"})
    gone_op = running["status"]["operationId"]
    store.delete("gone", tell_watchers=False)  # a re-list after 410, or a label removed
    await wait_for_phase(store, "next", {"Running"})
    polls_then = emr.operations[gone_op]
    await asyncio.sleep(0.3)
    emr.finish(store.objects["next"]["status"]["operationId"])
    await wait_for_phase(store, "next", {"Succeeded"})
    await supervisor.stop()
    assert emr.operations[gone_op] - polls_then <= 1, "a worker kept polling after its object vanished"
    assert [e.name for e in supervisor.book(("cn-hangzhou", "c-1"))] == ["next"]  # no watch here
    assert supervisor.active == 0


async def test_a_vanished_unknown_run_does_not_hold_the_queue_forever(store: FakeStore) -> None:
    """An Unknown run holds the cluster; deleted without a DELETED event, it must let go."""
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    unknown = created_at("unknown", "2025-01-01T00:00:01Z")
    unknown["status"] = {"phase": "Unknown", "run": 1, "attempts": 1}
    supervisor.observe(None, store.add(unknown))
    supervisor.observe("ADDED", store.add(created_at("next", "2025-01-01T00:00:02Z")))
    await wait_for_phase(store, "next", {"Queued"})
    store.delete("unknown", tell_watchers=False)
    await wait_for_phase(store, "next", {"Running"})
    await supervisor.stop()
    assert len(emr.submits) == 1


async def test_an_unknown_run_holds_overlapping_runs_until_acknowledged(store: FakeStore) -> None:
    """Hole 4: the queue forgot an Unknown run, though its operation may well be running."""
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    unknown = created_at("unknown", "2025-01-01T00:00:01Z")
    unknown["status"] = {"phase": "Unknown", "run": 1, "attempts": 1}
    supervisor.observe(None, store.add(unknown))
    store.add(created_at("next", "2025-01-01T00:00:02Z"))
    queued = await wait_for_phase(store, "next", {"Queued"})
    assert queued["status"]["waitingFor"] == ["ns/unknown"]
    await asyncio.sleep(0.2)
    assert emr.submits == []
    store.annotate("unknown", "emrops.io/acknowledged-at", "checked by sre")  # the watch delivers it
    await wait_for_phase(store, "next", {"Running"})
    await supervisor.stop()
    status = store.objects["unknown"]["status"]
    assert status["phase"] == "Unknown" and status["acknowledgedAt"] == "checked by sre"
    assert status["acknowledgedRun"] == 1
    assert len(emr.submits) == 1


async def test_a_run_without_credentials_does_not_hold_the_queue(store: FakeStore) -> None:
    """Hole 9: a run that cannot start (no Secret) kept every later overlapping run waiting."""
    emr = FakeEmr()
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    no_secret = created_at("no-secret", "2025-01-01T00:00:01Z")
    no_secret["spec"]["credentialsSecretRef"] = {"name": "missing"}
    store.add(no_secret)
    store.add(created_at("fine", "2025-01-01T00:00:02Z"))
    await wait_for_phase(store, "fine", {"Succeeded"})
    stuck = store.objects["no-secret"]["status"]
    await supervisor.stop()
    assert stuck["phase"] == "Pending" and stuck["conditions"][1]["reason"] == "CredentialsMissing"
    assert len(emr.submits) == 1


async def test_shutdown_lets_a_call_in_flight_land_and_submits_nothing_new(store: FakeStore) -> None:
    """Hole 12: SIGTERM cancelled calls in flight, turning a known outcome into Unknown."""
    emr = FakeEmr(hold=True)
    emr.gate = asyncio.Event()
    supervisor = Supervisor(services(store, emr, []))
    supervisor.observe("ADDED", store.add(created_at("slow", "2025-01-01T00:00:01Z")))
    await wait_for_phase(store, "slow", {"Submitting"})
    stopping = asyncio.create_task(supervisor.stop(grace=5.0))
    await asyncio.sleep(0.1)
    supervisor.observe("ADDED", store.add(created_at("later", "2025-01-01T00:00:05Z", clusterId="c-2")))
    assert not stopping.done()
    emr.gate.set()
    await asyncio.wait_for(stopping, 5.0)
    status = store.objects["slow"]["status"]
    assert status["phase"] == "Running" and status["operationId"] == "op-1"
    assert len(emr.submits) == 1 and "status" not in store.objects["later"]


async def test_shutdown_gives_up_on_a_call_after_the_grace(store: FakeStore) -> None:
    emr = FakeEmr()
    emr.gate = asyncio.Event()
    supervisor = Supervisor(services(store, emr, []))
    supervisor.observe("ADDED", store.add(service_action()))
    await wait_for_phase(store, "sa", {"Submitting"})
    await asyncio.wait_for(supervisor.stop(grace=0.2), 2.0)
    assert store.objects["sa"]["status"]["phase"] == "Submitting"  # Unknown after the grace, later
