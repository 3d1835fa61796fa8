"""One replica incarnation's watch stream, fed to ``Supervisor.observe`` as kopf's handler does.

The stream replays the apiserver's event log in its global order (by resourceVersion), each
event late by a random lag (never overtaking an earlier one). It starts with a listing (events
of type None, in key order, as kopf delivers the initial listing) and resumes the log from the
position that listing is consistent with. At a "410 Gone" the stream drops what it has not
delivered yet, waits, lists again (type None events for what exists *now*) and resumes after that
listing: the DELETED events of objects deleted in between are never delivered, exactly as kopf
does not synthesize them. With a label selector, events of non-matching objects are not
delivered (kopf's client-side ``labels=`` filter).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from simulation.apiserver import ApiServer, labels_match

ObserveFn = Callable[[str | None, dict[str, Any]], None]


class WatchStream:
    def __init__(
        self,
        server: ApiServer,
        observe: ObserveFn,
        *,
        selector: str | None,
        lag: Callable[[], float],
        list_latency: Callable[[], float],
        gone_at: list[float],
        note: Callable[[str], None],
    ) -> None:
        self._server = server
        self._observe = observe
        self._selector = selector
        self._lag = lag
        self._list_latency = list_latency
        #: Virtual times of 410 Gone, ascending.
        self._gone_at = sorted(gone_at)
        self._note = note
        self.delivered = 0

    def _deliver(self, event_type: str | None, body: dict[str, Any]) -> None:
        labels = (body.get("metadata") or {}).get("labels") or {}
        if not labels_match(self._selector, labels):
            return
        self.delivered += 1
        self._observe(event_type, body)

    async def _list(self) -> int:
        await asyncio.sleep(self._list_latency())
        position, bodies = self._server.list_all(self._selector)
        self._note(f"listing: {len(bodies)} objects, log position {position}")
        for body in bodies:
            self._deliver(None, body)
        return position

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        position = await self._list()
        last_due = loop.time()
        due: float | None = None  # delivery time of the event at ``position``, once drawn
        log = self._server.log
        while True:
            gone = self._gone_at[0] if self._gone_at else math.inf
            if position < len(log) and due is None:
                due = max(last_due, log[position].time + self._lag())
            until = due if due is not None else math.inf
            if gone <= until:
                if gone == math.inf:
                    await self._server.next_event(position)
                    continue
                if gone > loop.time():
                    if due is None:
                        # Idle until the 410 or the next event, whichever comes first.
                        try:
                            async with asyncio.timeout(gone - loop.time()):
                                await self._server.next_event(position)
                        except TimeoutError:
                            pass
                        continue
                    await asyncio.sleep(gone - loop.time())
                self._gone_at.pop(0)
                missed = len(log) - position
                self._note(f"410 Gone: {missed} undelivered events dropped; re-listing")
                position = await self._list()
                last_due, due = loop.time(), None
                continue
            assert due is not None
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            event = log[position]
            position, last_due, due = position + 1, max(last_due, loop.time()), None
            self._deliver(event.type, self._server.event_body(event))
