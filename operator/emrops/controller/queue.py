"""The per-cluster queue: which unfinished runs a ServiceAction must wait for.

Pure (no I/O). The ``Supervisor`` feeds every watch event's body to a ``Book``, which keeps one
``QueueEntry`` per *unfinished* object under its (regionId, clusterId); ``blockers`` reads it.
Finished objects never block anyone, so the book drops them: thousands of finished
ServiceActions cost one dict lookup per event and no memory. An entry is recomputed only when the
object's resourceVersion changed (re-listings and duplicate events cost a lookup).

A run waits for every unfinished run on the same cluster whose targets overlap its own and that
either started earlier (creation order, or the time a re-run was accepted) or is already in
flight (Submitting, Running): EMR would answer ConcurrentModification to both. Only earlier runs
block, so the queue cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from emrops.api.spec import ServiceActionSpec
from emrops.api.status import FINISHED, Phase
from emrops.api.targets import Target, overlap, targets_of

ClusterKey = tuple[str, str]  # (regionId, clusterId)

_IN_FLIGHT = frozenset({Phase.SUBMITTING.value, Phase.RUNNING.value})
_FINISHED = frozenset(p.value for p in FINISHED)


@dataclass(frozen=True)
class QueueEntry:
    uid: str
    namespace: str
    name: str
    #: Sorts in start order: (second, finer time or "~" when not yet accepted, namespace, name).
    order: tuple[str, str, str, str]
    phase: str | None
    targets: frozenset[Target]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in _FINISHED

    @property
    def in_flight(self) -> bool:
        return self.phase in _IN_FLIGHT


def entry_of(body: Mapping[str, Any]) -> tuple[ClusterKey, QueueEntry] | None:
    """The index key and entry of one ServiceAction body; None when its spec cannot be read."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    try:
        spec = ServiceActionSpec.from_body(body)
    except pydantic.ValidationError:
        return None
    start = str(status.get("startTime") or "")
    created = str(meta.get("creationTimestamp") or "")
    run = status.get("run") or 1
    if isinstance(run, int) and run >= 2 and start:
        order = (start[:19], start, str(meta.get("namespace", "")), str(meta.get("name", "")))
    else:
        order = (created[:19], start or "~", str(meta.get("namespace", "")), str(meta.get("name", "")))
    entry = QueueEntry(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        order=order,
        phase=status.get("phase"),
        targets=targets_of(spec.component_instance_selector),
    )
    return (spec.region_id, spec.cluster_id), entry


def finished_phase(phase: object) -> bool:
    """Whether a raw ``status.phase`` value ends the run (such a run never blocks another)."""
    return phase in _FINISHED


class Book:
    """The per-cluster queue: ``ClusterKey -> {uid: QueueEntry}`` for every unfinished object.

    Calling the book with a cluster key gives that cluster's entries (the ``Services.queue`` view).
    """

    def __init__(self) -> None:
        self._by_cluster: dict[ClusterKey, dict[str, QueueEntry]] = {}
        #: uid -> (resourceVersion the entry was computed from, the key it is filed under).
        self._filed: dict[str, tuple[str, ClusterKey]] = {}

    def __call__(self, key: ClusterKey) -> tuple[QueueEntry, ...]:
        bucket = self._by_cluster.get(key)
        return tuple(bucket.values()) if bucket else ()

    def __len__(self) -> int:
        return len(self._filed)

    def observe(self, body: Mapping[str, Any]) -> None:
        """File (or refile, or drop) one object from its latest body."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        if finished_phase((body.get("status") or {}).get("phase")):
            self.forget(uid)
            return
        version = str(meta.get("resourceVersion") or "")
        filed = self._filed.get(uid)
        if filed is not None and version and filed[0] == version:
            return  # the same object version again (a re-listing): nothing changed
        found = entry_of(body)
        if found is None:
            self.forget(uid)
            return
        key, entry = found
        if filed is not None and filed[1] != key:
            self.forget(uid)  # spec is immutable, so this cannot happen; stay correct anyway
        self._by_cluster.setdefault(key, {})[uid] = entry
        self._filed[uid] = (version, key)

    def forget(self, uid: str) -> None:
        filed = self._filed.pop(uid, None)
        if filed is None:
            return
        bucket = self._by_cluster.get(filed[1])
        if bucket is not None:
            bucket.pop(uid, None)
            if not bucket:
                del self._by_cluster[filed[1]]


def blockers(me: QueueEntry, others: Iterable[QueueEntry]) -> tuple[str, ...]:
    """``namespace/name`` of every run ``me`` must wait for, in start order."""
    found = [
        other
        for other in others
        if other.uid != me.uid
        and not other.finished
        and (other.order < me.order or other.in_flight)
        and overlap(me.targets, other.targets)
    ]
    return tuple(other.ref for other in sorted(found, key=lambda e: e.order))
