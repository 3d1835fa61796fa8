"""Exponential backoff with full jitter and a cap (the AWS architecture blog's "Full Jitter").

The delay before attempt ``n + 1`` is uniform in ``[0, min(cap, base * 2 ** (n - 1))]``, so
many operators retrying the same throttled API spread out instead of retrying in lockstep. A
server's ``retry_after`` hint is a floor: we never come back sooner than EMR asked.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: Default first ceiling, in seconds.
DEFAULT_BASE = 1.0
#: Default largest ceiling, in seconds.
DEFAULT_CAP = 60.0


@dataclass(frozen=True)
class Backoff:
    """A backoff policy. ``delay(n, u)`` is pure: ``u`` is a uniform draw in [0, 1)."""

    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP

    def __post_init__(self) -> None:
        if self.base <= 0 or self.cap < self.base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={self.base} cap={self.cap}")

    def ceiling(self, attempts: int) -> float:
        """The largest delay after ``attempts`` failed attempts (1-based)."""
        exponent = max(0, attempts - 1)
        if exponent >= 64:  # 2**64 * base is beyond any cap; avoid huge floats
            return self.cap
        return min(self.cap, self.base * 2.0**exponent)

    def delay(self, attempts: int, u: float, *, floor: float | None = None) -> float:
        """Seconds to wait after ``attempts`` failures, for the draw ``u``; at least ``floor``."""
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"the jitter draw must be in [0, 1], got {u}")
        jittered = u * self.ceiling(attempts)
        return max(jittered, floor or 0.0)

    def sample(
        self, attempts: int, *, floor: float | None = None, rng: Callable[[], float] = random.random
    ) -> float:
        """``delay`` with a fresh draw from ``rng``."""
        return self.delay(attempts, rng(), floor=floor)
