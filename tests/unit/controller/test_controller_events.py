"""Events as client-go's recorder posts them: aggregated, rate-limited per object, bounded, quiet reasons."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from typing import Any

from loopback_apiserver import Seen, loopback, settle, status_error

from emrops.controller import events
from emrops.controller.apiserver import MERGE_PATCH, ApiClient
from emrops.controller.events import EventRecorder, involved_object
from emrops.controller.machine import Event

BODY = {
    "apiVersion": "emrops.io/v1alpha1",
    "kind": "ServiceAction",
    "metadata": {"name": "sa", "namespace": "ns", "uid": "u-1"},
}


def apiserver() -> Any:
    names = itertools.count(1)

    async def answer(seen: Seen) -> tuple[int, object]:
        if seen.method == "POST":
            return 201, {**seen.body, "metadata": {"name": f"sa.{next(names)}", "namespace": "ns"}}
        return 200, {}

    return loopback(answer)


async def test_a_repeat_updates_the_count_of_the_event_already_posted() -> None:
    async with apiserver() as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api)
        recorder.start()
        try:
            for _ in range(3):
                recorder.emit(BODY, Event("Throttled", "GetOperation: throttled", "Warning"))
            recorder.emit(BODY, Event("Throttled", "another message", "Warning"))
            await recorder.aclose()
        finally:
            await api.aclose()
    methods = [(s.method, s.path) for s in server.seen]
    assert methods == [
        ("POST", "/api/v1/namespaces/ns/events"),
        ("PATCH", "/api/v1/namespaces/ns/events/sa.1"),
        ("PATCH", "/api/v1/namespaces/ns/events/sa.1"),
        ("POST", "/api/v1/namespaces/ns/events"),
    ]
    created = server.seen[0].body
    assert created["involvedObject"] == {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "name": "sa",
        "namespace": "ns",
        "uid": "u-1",
    }
    assert (created["type"], created["reason"], created["count"]) == ("Warning", "Throttled", 1)
    assert [s.body["count"] for s in server.seen[1:3]] == [2, 3]
    assert server.seen[1].headers["Content-Type"] == MERGE_PATCH


async def test_an_expired_event_is_posted_again() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        if seen.method == "PATCH":
            return status_error(404, "not found")
        return 201, {"metadata": {"name": "sa.1"}}

    async with loopback(answer) as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api)
        try:
            await recorder.post(involved_object(BODY), Event("Succeeded", "done"))
            await recorder.post(involved_object(BODY), Event("Succeeded", "done"))
        finally:
            await api.aclose()
    assert [s.method for s in server.seen] == ["POST", "PATCH", "POST"]


async def test_each_object_gets_a_burst_then_one_event_per_refill_period() -> None:
    clock = [0.0]
    outcomes: list[str] = []
    async with apiserver() as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api, clock=lambda: clock[0], outcome=outcomes.append)
        involved = involved_object(BODY)
        other = {**involved, "uid": "u-2"}
        try:
            for i in range(events.BURST + 2):
                await recorder.post(involved, Event("Retrying", f"attempt {i}", "Warning"))
            await recorder.post(other, Event("Retrying", "attempt 0", "Warning"))
            clock[0] += events.REFILL_SECONDS
            await recorder.post(involved, Event("Retrying", "later", "Warning"))
        finally:
            await api.aclose()
    assert outcomes.count("rate_limited") == 2
    assert outcomes.count("posted") == events.BURST + 2  # the burst, the other object, one refilled


async def test_quiet_reasons_are_not_posted() -> None:
    outcomes: list[str] = []
    async with apiserver() as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api, outcome=outcomes.append)
        recorder.start()
        try:
            recorder.emit(BODY, Event("Submitting", "Calling RunApplicationAction (attempt 1)"))
            recorder.emit(BODY, Event("Progress", "3 of 10 instances done"))
            recorder.emit(BODY, Event("Submitted", "operation op-1"))
            await recorder.aclose()
        finally:
            await api.aclose()
    assert [s.body["reason"] for s in server.seen] == ["Submitted"]
    assert outcomes == ["quiet", "quiet", "posted"]


async def test_a_full_queue_drops_instead_of_growing() -> None:
    outcomes: list[str] = []
    async with apiserver() as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api, outcome=outcomes.append)  # not started: nothing drains it
        try:
            for i in range(events.MAX_QUEUED + 5):
                recorder.emit(BODY, Event("Succeeded", f"run {i}"))
            await settle()
        finally:
            await api.aclose()
    assert outcomes == ["dropped"] * 5
    assert server.seen == []


async def test_several_objects_events_are_posted_at_once() -> None:
    """One request at a time kept up with about 32 Events a second: a burst dropped a third."""
    release = asyncio.Event()

    async def answer(seen: Seen) -> tuple[int, object]:
        await release.wait()
        return 201, {"metadata": {"name": f"{seen.body['involvedObject']['name']}.1"}}

    async with loopback(answer) as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api)
        recorder.start()
        try:
            for i in range(40):
                body = {**BODY, "metadata": {"name": f"sa-{i}", "namespace": "ns", "uid": f"u-{i}"}}
                recorder.emit(body, Event("Succeeded", "done"))
            await settle()
            assert server.in_flight == events.POSTERS
            release.set()
            await recorder.aclose()
        finally:
            await api.aclose()
    assert len(server.seen) == 40


async def test_an_objects_events_keep_their_order_and_the_moment_they_happened() -> None:
    clock = [datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)]
    async with apiserver() as server:
        api = ApiClient(server.info)
        recorder = EventRecorder(api, now=lambda: clock[0])
        try:
            reasons = ["Pending", "Submitted", "Retrying", "Succeeded"]
            for i, reason in enumerate(reasons):
                clock[0] = clock[0].replace(second=i)
                recorder.emit(BODY, Event(reason, "m"))
                other = {**BODY, "metadata": {"name": f"other-{i}", "namespace": "ns", "uid": f"o-{i}"}}
                recorder.emit(other, Event("Pending", "m"))
            clock[0] = clock[0].replace(minute=5)  # posted minutes later (a burst's backlog)
            recorder.start()
            await recorder.aclose()
        finally:
            await api.aclose()
    mine = [s.body for s in server.seen if s.body["involvedObject"]["uid"] == "u-1"]
    assert [b["reason"] for b in mine] == reasons
    assert [b["firstTimestamp"] for b in mine] == [f"2026-12-03T10:00:0{i}Z" for i in range(4)]
    assert all(b["lastTimestamp"] == b["firstTimestamp"] for b in mine)
