"""Calls from one replica incarnation to a simulated server, with latency and SIGKILL.

A call takes ``latency`` virtual seconds. The server applies it at a random point inside that
interval (``server``, a plain function run at that instant), and the answer (its return value or
the exception it raised) reaches the caller at the end. So a caller that is cancelled mid-call
still has its request applied (it was on the wire), and a replica that is killed may or may not
have had its last request applied, depending on where the kill fell.

Killing a link (``kill()``) is SIGKILL as the servers see it: from that instant no request of
that incarnation is applied and no answer is delivered; its awaiting tasks never resume from
those calls. A process that exits after a graceful stop (``exit()``) hears no more answers, but
the requests it already sent still land.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, TypeVar

from emrops.controller.apiserver import ApiError
from emrops.controller.kube import Conflict, Gone, SecretUnreadable
from emrops.emr.errors import EmrError

T = TypeVar("T")

#: What a server may answer with. Anything else raised while applying a request is a bug of the
#: simulation itself (a checker, a server rule) and must never reach the controller as an answer.
ANSWERS = (Conflict, Gone, SecretUnreadable, EmrError, ApiError, TimeoutError)


class SimulationBug(RuntimeError):
    pass


class Wire:
    """Every link's requests that are on their way and not applied yet (a quiet world has none)."""

    def __init__(self) -> None:
        self.pending = 0


class Link:
    def __init__(self, rng: random.Random, on_bug: Callable[[BaseException], None], wire: Wire) -> None:
        self._rng = rng
        self._on_bug = on_bug
        self._wire = wire
        self.dead = False
        self.deaf = False
        #: Answers that will never come. asyncio holds tasks only weakly: a task waiting on a
        #: future nothing else references would be garbage collected mid-run (at a moment that
        #: depends on the collector, not on the seed), so the link keeps them until the end.
        self._hung: list[asyncio.Future[Any]] = []

    def kill(self) -> None:
        self.dead = self.deaf = True

    def exit(self) -> None:
        self.deaf = True

    async def call(
        self,
        server: Callable[[], T],
        latency: float,
        *,
        deadline: float | None = None,
        on_deadline: Callable[[], Exception] | None = None,
        landed: Callable[[], None] | None = None,
    ) -> T:
        """``server()``'s answer after ``latency`` seconds, applied at a random point inside it.

        With a ``deadline`` (the client's own), a call slower than that ends at the deadline
        with ``on_deadline()``'s exception while the request may still land later. ``landed``
        is called at the landing instant, applied or not (a killed link's request is lost).
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        applied_after = latency * self._rng.random()

        def deliver(result: T | None, error: Exception | None) -> None:
            if answer.done():  # the caller was cancelled, or gave up at its deadline
                return
            if self.deaf:  # the process is gone: its caller never hears back
                self._hung.append(answer)
                return
            if error is not None:
                answer.set_exception(error)
            else:
                answer.set_result(result)  # type: ignore[arg-type]

        if deadline is not None and on_deadline is not None and latency > deadline:
            loop.call_later(deadline, lambda: deliver(None, on_deadline()))

        def apply() -> None:
            self._wire.pending -= 1
            if landed is not None:
                landed()
            if self.dead:
                self._hung.append(answer)
                return  # the request never reached the server
            try:
                result: T | None = server()
                error: Exception | None = None
            except ANSWERS as exc:  # the server's answer is an error: deliver it as raised
                result, error = None, exc
            except Exception as exc:
                self._on_bug(exc)
                return
            loop.call_later(latency - applied_after, deliver, result, error)

        self._wire.pending += 1
        loop.call_later(applied_after, apply)
        return await answer
