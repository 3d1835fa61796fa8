"""A watch on the apiserver that timestamps what happens to each ServiceAction.

The recorder is how the benchmark measures latency: it watches the apiserver (no polling), stamps
every event with ``time.monotonic()`` on arrival, and keeps, per object, the first time each phase
and the ``operationId`` were seen, plus how many MODIFIED events (writes) the object received.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.kube import ApiError
from harness.kube import AsyncKube as Kube
from harness.status import TERMINAL_PHASES


@dataclass
class Track:
    """What the recorder saw of one ServiceAction."""

    added: float | None = None
    operation_id_at: float | None = None
    #: MODIFIED events (writes) up to and including the one that carried the operationId.
    writes_to_operation_id: int | None = None
    phase_at: dict[str, float] = field(default_factory=dict)
    modified: int = 0
    status_changes: int = 0
    #: For each MODIFIED event that changed status: the top-level status keys it changed.
    changed_keys: list[frozenset[str]] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Watch ServiceActions in one namespace and timestamp what happens to each of them.

    Survives an apiserver restart: the watch is resumed from the last resourceVersion (or relisted
    when that is too old), so counts stay exact across faults.
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.tracks: dict[str, Track] = {}
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rv: str | None = None
        self.watch_restarts = 0

    async def start(self) -> None:
        listing = await self.kube.list_with_version(self.namespace)
        for item in listing["items"]:
            self._observe("ADDED", item, time.monotonic())
        self._rv = listing["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async for event in self.kube.watch(self.namespace, self._rv):
                    now = time.monotonic()
                    obj = event["object"]
                    kind = event["type"]
                    if kind == "ERROR":
                        raise ApiError(int(obj.get("code", 500)), str(obj.get("message")))
                    self._rv = obj.get("metadata", {}).get("resourceVersion", self._rv)
                    if kind != "BOOKMARK":
                        self._observe(kind, obj, now)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                self.watch_restarts += 1
                if exc.status == 410:
                    # Too old: relist and take whatever changed as fresh observations.
                    self._rv = None
                    with contextlib.suppress(Exception):
                        listing = await self.kube.list_with_version(self.namespace)
                        for item in listing["items"]:
                            self._observe("MODIFIED", item, time.monotonic(), relist=True)
                        self._rv = listing["metadata"]["resourceVersion"]
                await asyncio.sleep(0.5)
            except Exception:  # the apiserver went away; retry until it is back
                self.watch_restarts += 1
                await asyncio.sleep(0.5)

    def _observe(self, kind: str, obj: Mapping[str, Any], now: float, *, relist: bool = False) -> None:
        name = obj["metadata"]["name"]
        track = self.tracks.setdefault(name, Track())
        if kind == "ADDED" and track.added is None:
            track.added = now
        elif kind == "MODIFIED" and not relist:
            track.modified += 1
            old, new = track.last.get("status") or {}, obj.get("status") or {}
            if old != new:
                track.status_changes += 1
                keys = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
                track.changed_keys.append(frozenset(keys))
        status = obj.get("status") or {}
        if status.get("operationId") and track.operation_id_at is None:
            track.operation_id_at = now
            track.writes_to_operation_id = track.modified
        phase = status.get("phase")
        if phase and phase not in track.phase_at:
            track.phase_at[phase] = now
        track.last = dict(obj)
        self.changed.set()

    def phases(self) -> dict[str, str | None]:
        return {name: (t.last.get("status") or {}).get("phase") for name, t in self.tracks.items()}

    async def wait(self, predicate: Any, *, within: float, what: str) -> None:
        """Wait until ``predicate(self)`` is true, woken by watch events (no polling delay)."""
        deadline = time.monotonic() + within
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(remaining, 1.0))

    def all_terminal(self, names: Iterable[str]) -> bool:
        phases = self.phases()
        return all(phases.get(name) in TERMINAL_PHASES for name in names)
