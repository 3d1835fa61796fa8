"""A client-side rate limiter per (access key id, region): EMR's quotas are counted that way.

Each key gets a token bucket (``qps`` tokens a second, at most ``burst`` saved up). Every EMR call
first takes a token, so emrops stays under the quota instead of discovering it through
throttling. When EMR throttles anyway (another client shares the key, or the quota is lower
than configured), ``throttled()`` empties that bucket, halves its rate for a while, and
honours EMR's retry-after: the whole key slows down, not only the object that was throttled.

The clock and the sleep are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: How long a bucket stays slowed down after a throttling error, in seconds.
DEFAULT_PENALTY_SECONDS = 30.0
#: The slowed-down rate, as a fraction of the configured rate.
PENALTY_FACTOR = 0.5


class TokenBucket:
    """``rate`` tokens a second, ``burst`` at most; ``acquire()`` waits for one (FIFO)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        penalty_seconds: float = DEFAULT_PENALTY_SECONDS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._penalty_seconds = penalty_seconds
        self._tokens = float(burst)
        self._stamp = clock()
        self._slow_until = float("-inf")
        self._closed_until = float("-inf")
        self._lock = asyncio.Lock()

    def current_rate(self) -> float:
        return self.rate * PENALTY_FACTOR if self._clock() < self._slow_until else self.rate

    def _refill(self) -> None:
        now = self._clock()
        start = max(self._stamp, self._closed_until)
        if now > start:
            self._tokens = min(float(self.burst), self._tokens + (now - start) * self.current_rate())
        self._stamp = max(now, self._stamp)

    def tokens(self) -> float:
        """Tokens available now (for tests and metrics)."""
        self._refill()
        return self._tokens

    async def acquire(self) -> None:
        """Take one token, waiting until there is one."""
        async with self._lock:
            while True:
                self._refill()
                now = self._clock()
                if now < self._closed_until:
                    await self._sleep(self._closed_until - now)
                    continue
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self.current_rate())

    def throttled(self, retry_after: float | None = None) -> None:
        """EMR throttled a call made with this key: empty the bucket and slow down."""
        now = self._clock()
        self._refill()
        self._tokens = 0.0
        self._slow_until = now + self._penalty_seconds
        if retry_after:
            self._closed_until = max(self._closed_until, now + retry_after)


@dataclass(frozen=True)
class LimiterKey:
    access_key_id: str
    region_id: str


class RateLimiter:
    """One ``TokenBucket`` per (access key id, region). ``qps <= 0`` turns limiting off."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        penalty_seconds: float = DEFAULT_PENALTY_SECONDS,
    ) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._penalty_seconds = penalty_seconds
        self._buckets: dict[LimiterKey, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.qps > 0

    def bucket(self, key: LimiterKey) -> TokenBucket | None:
        if not self.enabled:
            return None
        found = self._buckets.get(key)
        if found is None:
            found = TokenBucket(
                self.qps,
                self.burst,
                clock=self._clock,
                sleep=self._sleep,
                penalty_seconds=self._penalty_seconds,
            )
            self._buckets[key] = found
        return found

    async def acquire(self, key: LimiterKey) -> None:
        bucket = self.bucket(key)
        if bucket is not None:
            await bucket.acquire()

    def throttled(self, key: LimiterKey, retry_after: float | None = None) -> None:
        bucket = self.bucket(key)
        if bucket is not None:
            bucket.throttled(retry_after)
