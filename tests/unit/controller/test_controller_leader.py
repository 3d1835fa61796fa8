"""Leader election on a Lease: at most one leader at any moment, whatever the interleaving.

The Lease store is in memory with the apiserver's optimistic concurrency; every elector reads one
shared fake clock, so "at most one leader" is checked at every step of random schedules
(hypothesis), with lost and failed requests among them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emrops.controller.apiserver import ApiError
from emrops.controller.leader import Elector, LeaseConfig, LeaseConflict, LeaseRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


class FakeLeases:
    """One Lease with resourceVersion preconditions; ``fail`` makes the next call raise."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.rv = 0
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("the apiserver did not answer")

    async def get(self) -> LeaseRecord | None:
        self._check()
        return self.record

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        if self.record is not None:
            raise LeaseConflict("exists")
        return self._store(record)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        self._check()
        if self.record is None or record.resource_version != self.record.resource_version:
            raise LeaseConflict("changed")
        return self._store(record)

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.rv += 1
        self.record = replace(record, resource_version=str(self.rv))
        return self.record


def electors(n: int, store: FakeLeases, clock: Clock) -> list[Elector]:
    return [
        Elector(
            LeaseConfig("ns", "emrops", f"pod-{i}", lease_duration=15, renew_deadline=10, retry_period=2),
            store,
            clock=clock,
            now=clock.wall,
        )
        for i in range(n)
    ]


async def test_one_takes_a_free_lease_and_the_other_waits_out_its_duration() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = electors(2, store, clock)
    assert await a.try_acquire_or_renew() and a.leading
    assert not await b.try_acquire_or_renew()
    for _ in range(20):  # a renews every 2 s: b never gets it
        clock.t += 2
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
    clock.t += 10  # a stops renewing (killed): no longer leading after its renew deadline...
    assert not a.leading and not await b.try_acquire_or_renew()
    clock.t += 6  # ... and b takes over once a whole lease duration passed since a's last renewal
    assert await b.try_acquire_or_renew() and b.leading
    assert store.record is not None and store.record.holder == "pod-1" and store.record.transitions == 1


async def test_a_released_lease_is_taken_at_the_next_attempt() -> None:
    store, clock = FakeLeases(), Clock()
    a, b = electors(2, store, clock)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    await a.release()
    assert not a.leading and store.record is not None and store.record.holder is None
    clock.t += 2
    assert await b.try_acquire_or_renew()


async def test_a_leader_that_cannot_renew_reports_the_loss() -> None:
    store, clock = FakeLeases(), Clock()
    (a,) = electors(1, store, clock)
    assert await a.try_acquire_or_renew()
    lost = asyncio.Event()

    async def failing_get() -> LeaseRecord | None:
        raise ConnectionError("partitioned")

    store.get = failing_get  # type: ignore[method-assign]
    a.config = replace(a.config, retry_period=0.01, renew_deadline=0.05, lease_duration=0.1)
    a._clock = __import__("time").monotonic
    a._renewed_at = a._clock()
    await asyncio.wait_for(a.keep(lost), 5)
    assert lost.is_set() and not a.leading


async def test_a_failed_attempt_logs_why_an_api_call_failed(caplog: pytest.LogCaptureFixture) -> None:
    """In a pod that could not reach the apiserver, "lease ns/emrops: ApiError" said nothing of why."""
    store, clock = FakeLeases(), Clock()
    (a,) = electors(1, store, clock)
    unreachable = "GET /apis/coordination.k8s.io/v1/namespaces/ns/leases/emrops: ConnectError: no such host"

    async def failing_get() -> LeaseRecord | None:
        raise ApiError(0, unreachable)

    store.get = failing_get  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="emrops.leader"):
        assert not await a._attempt()
    assert caplog.messages == [f"lease ns/emrops: {unreachable}"]

    async def other_failure() -> LeaseRecord | None:
        raise ConnectionError("text of unknown origin")

    store.get = other_failure  # type: ignore[method-assign]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="emrops.leader"):
        assert not await a._attempt()
    assert caplog.messages == ["lease ns/emrops: ConnectionError"], "other exceptions: named only"


def test_the_timings_must_let_a_leader_give_up_before_a_standby_takes_over() -> None:
    with pytest.raises(ValueError, match="renew deadline"):
        LeaseConfig("ns", "emrops", "me", lease_duration=10, renew_deadline=10, retry_period=2)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),  # who tries
            st.floats(0, 6),  # how much time passes first
            st.booleans(),  # whether the store fails that call
            st.booleans(),  # whether it releases instead (a clean shutdown)
        ),
        max_size=80,
    )
)
def test_never_two_leaders_at_once(steps: list[tuple[int, float, bool, bool]]) -> None:
    store, clock = FakeLeases(), Clock()
    group = electors(3, store, clock)

    async def play() -> None:
        for who, elapse, fail, release in steps:
            clock.t += elapse
            store.fail = fail
            try:
                if release:
                    await group[who].release()
                else:
                    await group[who].try_acquire_or_renew()
            except ConnectionError:
                pass
            store.fail = False
            leaders = [e.config.identity for e in group if e.leading]
            assert len(leaders) <= 1, f"two leaders at t={clock.t}: {leaders}"

    asyncio.run(play())
