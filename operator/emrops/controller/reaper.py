"""Deletes finished ServiceActions whose ``spec.ttlSecondsAfterFinished`` has passed.

Fed every ServiceAction watch event (as the ``Supervisor`` is); keeps one timer task per object
that is due some day (``ttl.expires_at``), replaced on every event for that object and cancelled
when it is deleted or no longer due. A timer that fires deletes with the body's uid and
resourceVersion as preconditions (``objects.delete_if_unchanged``): if the object changed since
(a re-run was asked for), nothing is deleted and the newer event has already set a new timer.

It runs where the handlers run: on the leader only with ``--leader-elect``. Two processes that
both delete are harmless (the second gets 404).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from emrops.controller import ttl
from emrops.controller.tasks import spawn

logger = logging.getLogger("emrops.controller")

#: Deletes (namespace, name, uid, resourceVersion) if unchanged; True if it deleted.
DeleteFn = Callable[[str, str, str, str], Awaitable[bool]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Reaper:
    def __init__(
        self,
        delete: DeleteFn,
        *,
        clock: Callable[[], datetime] = _utc_now,
        retry_seconds: float = 30.0,
    ) -> None:
        self._delete = delete
        self._clock = clock
        self._retry = retry_seconds
        self._timers: dict[str, asyncio.Task[None]] = {}

    @property
    def pending(self) -> int:
        """Objects with a deletion timer."""
        return len(self._timers)

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        due = None if event_type == "DELETED" else ttl.expires_at(body)
        if due is None:
            return
        task = spawn(
            self._expire(
                str(meta.get("namespace")), str(meta.get("name")), uid, str(meta.get("resourceVersion")), due
            ),
            name=f"emrops ttl {meta.get('namespace')}/{meta.get('name')}",
            done=lambda done: self._done(uid, done),
        )
        self._timers[uid] = task

    def _done(self, uid: str, task: asyncio.Task[None]) -> None:
        if self._timers.get(uid) is task:
            del self._timers[uid]

    async def _expire(self, namespace: str, name: str, uid: str, version: str, due: datetime) -> None:
        while True:
            delay = (due - self._clock()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            try:
                deleted = await self._delete(namespace, name, uid, version)
            except Exception as exc:  # an apiserver hiccup: try again later, never give up silently
                logger.warning("%s/%s: deleting after its TTL failed (%s); retrying", namespace, name, exc)
                await asyncio.sleep(self._retry)
                continue
            if deleted:
                logger.info("%s/%s: deleted, ttlSecondsAfterFinished has passed", namespace, name)
            return

    async def stop(self) -> None:
        timers = list(self._timers.values())
        self._timers.clear()
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
