"""The token bucket per (access key, region), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from emrops.controller.ratelimit import LimiterKey, RateLimiter, TokenBucket


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await bucket.acquire()
    assert clock.slept == []  # the burst is free
    await bucket.acquire()
    await bucket.acquire()
    assert clock.now == pytest.approx(101.0)  # then 2 a second


async def test_tokens_refill_up_to_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock, sleep=clock.sleep)
    await bucket.acquire()
    await bucket.acquire()
    clock.now += 1000
    assert bucket.tokens() == pytest.approx(2.0)


async def test_throttling_empties_halves_and_honours_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=4, clock=clock, sleep=clock.sleep, penalty_seconds=30.0)
    bucket.throttled(retry_after=5.0)
    assert bucket.tokens() == 0.0
    assert bucket.current_rate() == 2.0
    await bucket.acquire()
    # Nothing before the retry-after, then a token at the halved rate.
    assert clock.now == pytest.approx(105.5)
    clock.now += 30.0
    assert bucket.current_rate() == 4.0


async def test_limiter_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(qps=1.0, burst=1, clock=clock, sleep=clock.sleep)
    a = LimiterKey("ak-1", "cn-hangzhou")
    b = LimiterKey("ak-1", "cn-beijing")
    await limiter.acquire(a)
    await limiter.acquire(b)
    assert clock.slept == []
    limiter.throttled(a, retry_after=10.0)
    await limiter.acquire(b)
    assert clock.now == pytest.approx(101.0)  # b waits only for its own refill
    await limiter.acquire(a)
    assert clock.now >= 110.0


async def test_zero_qps_disables_limiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(qps=0, burst=0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        await limiter.acquire(LimiterKey("ak", "r"))
    limiter.throttled(LimiterKey("ak", "r"), 10.0)
    assert clock.slept == [] and not limiter.enabled


async def test_waiters_are_served_one_at_a_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock, sleep=clock.sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert clock.now == pytest.approx(103.0)
