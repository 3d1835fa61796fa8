"""Per-access-key token buckets: the gateway's rate limit, in time-scaled seconds."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from emrops.emulator.errors import EmulatorError
from emrops.emulator.scenario import RateLimit


@dataclass
class _Bucket:
    limit: RateLimit
    tokens: float
    updated: float


class Throttle:
    """``check(key, limit)`` takes a token or raises the limit's throttling code with a retry-after.

    With time scale F, a bucket refills at ``qps / F`` tokens per real second, and the
    ``x-acs-retry-after`` it sends (milliseconds) is the real time until the next token.
    """

    def __init__(self, *, time_scale: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._scale = time_scale
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def check(self, access_key_id: str, limit: RateLimit) -> None:
        now = self._clock()
        bucket = self._buckets.get(access_key_id)
        if bucket is None or bucket.limit != limit:
            bucket = self._buckets[access_key_id] = _Bucket(limit, float(limit.burst), now)
        rate = limit.qps / self._scale  # tokens per real second
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait_ms = max(1, math.ceil((1.0 - bucket.tokens) / rate * 1000))
        raise EmulatorError(
            limit.code,
            f"Request rate exceeds {limit.qps:g} per second for this access key.",
            headers={"x-acs-retry-after": str(wait_ms)},
        )
