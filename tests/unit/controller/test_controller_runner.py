"""Workers against an in-memory object store with real resourceVersion conflicts and a fake EMR.

The fakes (``controller_fakes``) stand in for Kubernetes and EMR only; the worker, the state
machine and the status writer are the real ones.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from controller_fakes import FakeEmr, FakeStore, service_action, services, wait_for_phase

from emrops.controller.runner import Supervisor
from emrops.emr.errors import ApiError, OutcomeUnknownError


async def test_a_run_goes_from_nothing_to_succeeded_with_one_call(store: FakeStore) -> None:
    emr, events = FakeEmr(), []  # type: list[Event]
    supervisor = Supervisor(services(store, emr, events))
    supervisor.observe("ADDED", store.add(service_action()))
    obj = await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    status = obj["status"]
    assert len(emr.submits) == 1 and status["operationId"] == "op-1" and status["requestId"] == "req-1"
    assert [c["status"] for c in status["conditions"]] == ["True", "False", "False"]
    # No Pending: the acceptance is folded into the intent (Submitting, which the recorder does
    # not post), so the Events a person sees are Submitted and Succeeded.
    assert [e.reason for e in events][:2] == ["Submitting", "Submitted"] and events[-1].reason == "Succeeded"
    assert status["progress"]["total"] == 2


async def test_two_operators_on_the_same_object_submit_once(store: FakeStore) -> None:
    emr = FakeEmr()
    first, second = Supervisor(services(store, emr, [])), Supervisor(services(store, emr, []))
    body = store.add(service_action())
    first.observe("ADDED", copy.deepcopy(body))
    second.observe("ADDED", copy.deepcopy(body))
    await wait_for_phase(store, "sa", {"Succeeded"})
    await asyncio.gather(first.stop(), second.stop())
    assert len(emr.submits) == 1


async def test_an_ambiguous_failure_ends_unknown_without_a_second_call(store: FakeStore) -> None:
    emr = FakeEmr(submit_error=OutcomeUnknownError("read timeout after sending"))
    supervisor = Supervisor(services(store, emr, []))
    supervisor.observe("ADDED", store.add(service_action()))
    obj = await wait_for_phase(store, "sa", {"Unknown"})
    await asyncio.sleep(0.3)  # longer than the grace: still nothing more
    await supervisor.stop()
    assert len(emr.submits) == 1
    assert obj["status"]["conditions"][2]["status"] == "True"


async def test_terminal_error_fails_with_guidance(store: FakeStore) -> None:
    emr = FakeEmr(
        submit_error=ApiError(code="NotAuthorized", message="denied", http_status=400, request_id="r9")
    )
    supervisor = Supervisor(services(store, emr, []))
    supervisor.observe("ADDED", store.add(service_action()))
    obj = await wait_for_phase(store, "sa", {"Failed"})
    await supervisor.stop()
    assert "emr:RunApplicationAction" in obj["status"]["message"]
    assert obj["status"]["lastError"]["requestId"] == "r9"
    assert len(emr.submits) == 1


async def test_a_missing_secret_waits_until_it_appears(store: FakeStore) -> None:
    emr, events = FakeEmr(), []  # type: list[Event]
    supervisor = Supervisor(services(store, emr, events))
    supervisor.observe("ADDED", store.add(service_action(secret="later")))
    await asyncio.sleep(0.2)
    status = store.objects["sa"]["status"]
    assert status["phase"] == "Pending" and "Secret ns/later" in status["message"]
    assert status["conditions"][1]["reason"] == "CredentialsMissing"
    assert emr.submits == [] and [e.reason for e in events].count("CredentialsMissing") == 1
    store.secrets["later"] = {"accessKeyId": "ak2", "accessKeySecret": "sk2"}
    await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 1
    assert "sk2" not in repr(store.objects["sa"]) and not any("sk2" in e.message for e in events)


async def test_deleting_an_object_stops_its_worker(store: FakeStore) -> None:
    supervisor = Supervisor(services(store, FakeEmr(), []))
    body = store.add(service_action(secret="never"))
    supervisor.observe("ADDED", body)
    await asyncio.sleep(0.05)
    assert supervisor.active == 1
    supervisor.observe("DELETED", body)
    await asyncio.sleep(0.01)
    assert supervisor.active == 0
    await supervisor.stop()


def hdfs_action(name: str, created: str) -> dict[str, Any]:
    body = service_action(name)
    body["metadata"]["creationTimestamp"] = created
    return body


async def test_the_queue_follows_events_and_finished_objects_leave_it(store: FakeStore) -> None:
    supervisor = Supervisor(services(store, FakeEmr(), [], settle_seconds=60, settle_max=60))
    key = ("cn-hangzhou", "c-1")
    first = store.add(hdfs_action("a", "2025-01-01T00:00:01Z"))
    supervisor.observe(None, first)  # the initial listing
    supervisor.observe("ADDED", store.add(hdfs_action("b", "2025-01-01T00:00:02Z")))
    assert sorted(e.name for e in supervisor.services.queue(key)) == ["a", "b"]
    moved = copy.deepcopy(first)
    moved["status"] = {"phase": "Running", "operationId": "op-9"}
    moved["metadata"]["resourceVersion"] = "900"
    supervisor.observe("MODIFIED", moved)
    assert {e.name: e.exclusive for e in supervisor.services.queue(key)} == {"a": True, "b": False}
    elsewhere = copy.deepcopy(moved)  # a changed cluster key (spec is immutable, but stay correct)
    elsewhere["spec"]["clusterId"] = "c-2"
    elsewhere["metadata"]["resourceVersion"] = "901"
    supervisor.observe("MODIFIED", elsewhere)
    assert [e.name for e in supervisor.services.queue(key)] == ["b"]
    assert [e.name for e in supervisor.services.queue(("cn-hangzhou", "c-2"))] == ["a"]
    done = copy.deepcopy(elsewhere)
    done["status"]["phase"] = "Succeeded"
    done["metadata"]["resourceVersion"] = "902"
    supervisor.observe("MODIFIED", done)
    assert supervisor.services.queue(("cn-hangzhou", "c-2")) == ()
    supervisor.observe("DELETED", store.objects["b"])
    assert supervisor.services.queue(key) == () and len(supervisor.book) == 0
    await supervisor.stop()


async def test_finished_objects_take_no_queue_entry(store: FakeStore) -> None:
    supervisor = Supervisor(services(store, FakeEmr(), []))
    for i in range(50):
        body = hdfs_action(f"old-{i}", "2025-01-01T00:00:01Z")
        body["status"] = {"phase": "Succeeded"}
        supervisor.observe(None, store.add(body))
    assert len(supervisor.book) == 0 and supervisor.active == 0
    await supervisor.stop()


async def test_no_queue_check_before_the_listing_settles(store: FakeStore) -> None:
    """The younger run is seen first; the barrier makes it wait for the older one all the same."""
    emr = FakeEmr()
    supervisor = Supervisor(services(store, emr, [], settle_seconds=0.3, settle_max=30))
    supervisor.observe(None, store.add(hdfs_action("young", "2025-01-01T00:00:09Z")))
    await asyncio.sleep(0.15)
    # Its first write is what the gates decide (the acceptance folds into it): none before them.
    assert not supervisor.settled.is_set() and emr.submits == []
    assert "status" not in store.objects["young"]
    supervisor.observe(None, store.add(hdfs_action("old", "2025-01-01T00:00:01Z")))
    young = await wait_for_phase(store, "young", {"Queued"})
    assert supervisor.settled.is_set()
    assert young["status"]["waitingFor"] == ["ns/old"]
    await wait_for_phase(store, "old", {"Succeeded"})
    assert [r.cluster_id for r in emr.submits] == ["c-1"]
    supervisor.observe("MODIFIED", copy.deepcopy(store.objects["old"]))  # the watch reports it finished
    await wait_for_phase(store, "young", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 2


async def test_the_barrier_sets_after_a_quiet_period_of_new_objects(store: FakeStore) -> None:
    supervisor = Supervisor(services(store, FakeEmr(), [], settle_seconds=0.5, settle_max=30))
    assert not supervisor.settled.is_set()  # nothing seen yet: the listing has not arrived
    a = store.add(hdfs_action("a", "2025-01-01T00:00:01Z"))
    a["status"] = {"phase": "Succeeded"}
    supervisor.observe(None, a)
    await asyncio.sleep(0.3)
    b = copy.deepcopy(a)
    b["metadata"].update(name="b", uid="uid-b")
    supervisor.observe(None, b)  # a new object restarts the quiet period
    await asyncio.sleep(0.3)
    assert not supervisor.settled.is_set()
    for _ in range(3):  # a known object changing does not
        supervisor.observe("MODIFIED", b)
        await asyncio.sleep(0.1)
    assert supervisor.settled.is_set()  # due 0.5 s after b; had MODIFIED counted, 1.0 s after it
    await supervisor.stop()


async def test_the_barrier_sets_at_the_latest_after_settle_max(store: FakeStore) -> None:
    supervisor = Supervisor(services(store, FakeEmr(), [], settle_seconds=60, settle_max=0.3))
    base = hdfs_action("x", "2025-01-01T00:00:01Z")
    base["status"] = {"phase": "Failed"}
    for i in range(100):  # new objects keep coming
        body = copy.deepcopy(base)
        body["metadata"].update(name=f"x{i}", uid=f"uid-x{i}")
        supervisor.observe("ADDED", body)
        if supervisor.settled.is_set():
            break
        await asyncio.sleep(0.02)
    assert supervisor.settled.is_set()
    await supervisor.stop()
