"""An asyncio event loop on a virtual clock: it never sleeps and never touches a file descriptor.

``BaseEventLoop._run_once`` asks its selector to wait ``timeout`` seconds for I/O before running
the timers that are due. Our selector has no I/O to wait for: it moves the virtual clock forward
by ``timeout`` instead, so a ``sleep(3600)`` costs one loop iteration. Everything else
(ready queue, timer heap, tasks, ``asyncio.timeout``) is the standard library's own code, which is
why the controller runs on this loop unchanged.

Deterministic by construction: one thread, FIFO ready queue, a timer heap ordered by due time
and insertion, and no real I/O. A loop whose every task waits on something that can never happen
(no ready callback, no timer) is a deadlock in the simulated world: ``select`` raises ``Deadlock``
rather than blocking forever.
"""

from __future__ import annotations

import asyncio
import contextvars
from asyncio import base_events
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

_Ts = TypeVarTuple("_Ts")


class Deadlock(RuntimeError):
    """Nothing is ready and no timer is scheduled: the simulated world can never move again."""


class _VirtualSelector:
    """The selector ``BaseEventLoop`` polls; waiting advances the loop's virtual clock."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise Deadlock("no ready callback and no timer: every task waits forever")
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def close(self) -> None:
        pass


class VirtualLoop(base_events.BaseEventLoop):
    """The loop; ``time()`` is virtual seconds since the start of the simulation."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = start
        self._selector = _VirtualSelector(self)
        # Timers due within this of "now" run now; a microsecond absorbs float rounding of
        # ``now + delay`` without reordering anything a test could observe.
        self._clock_resolution = 1e-6
        # asyncio holds tasks only weakly: a task blocked on a future nobody else references
        # would be collected whenever the garbage collector runs, which no seed decides. Every
        # task stays referenced here until it is done, so a run never depends on the collector.
        self._tasks: list[asyncio.Task[Any]] = []
        self.set_task_factory(self._keep)

    def _keep(
        self, loop: asyncio.AbstractEventLoop, coro: Any, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
        if len(self._tasks) > 256:
            self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(task)
        return task

    def time(self) -> float:
        return self._now

    # A real clock always moves on between two iterations; this one only moves to the next
    # timer. Code that waits for "a little time" (the rate limiter sleeping until its bucket holds
    # a whole token) would otherwise wait a delay that rounds to nothing, forever, at one instant.
    # So a positive delay is at least one clock resolution.
    def call_later(
        self,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay > 0:
            delay = max(delay, self._clock_resolution)
        return super().call_later(delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if when > self._now:
            when = max(when, self._now + self._clock_resolution)
        return super().call_at(when, callback, *args, context=context)

    def advance(self, seconds: float) -> None:
        target = self._now + seconds
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            # Land exactly on the first due timer, whatever the rounding of ``timeout`` was.
            first = scheduled[0].when()
            if first <= target + self._clock_resolution:
                target = max(target, first)
        self._now = max(self._now, target)

    # BaseEventLoop's I/O hooks: there is no I/O and no other thread to wake up.
    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("cannot close a running loop")
        super().close()
