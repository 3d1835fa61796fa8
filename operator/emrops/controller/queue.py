"""The per-cluster queue: which runs a ServiceAction must wait for.

Pure (no I/O). The ``Supervisor`` feeds every watch event's body to a ``Book``, which keeps one
``QueueEntry`` per object that *holds its cluster* (``machine.holds_cluster``: unfinished and
able to start, or ended ``Unknown`` / past its deadline with its operation maybe still running,
until a person acknowledges it) under its (regionId, clusterId); ``blockers`` reads it. Other
objects never block anyone, so the book drops them: thousands of finished ServiceActions cost
one dict lookup per event and no memory. An entry is recomputed only when the object's
resourceVersion changed (re-listings and duplicate events cost a lookup).

The order is a property of the objects alone, never of how fresh a reader's view is, so every
replica, and the same replica before and after a restart, agrees on it:

- a first run sorts by ``metadata.creationTimestamp`` (to the second, as Kubernetes keeps it);
- a re-run sorts by the moment it was accepted (``status.startTime``, to the microsecond), and
  after any first run created within the same second;
- ties break by namespace, then name.

A run waits for every overlapping run on its cluster that holds the cluster and either sorts
earlier or may have a live operation (``machine.exclusive``: Submitting, Running, Unknown,
followed past its deadline); EMR would answer ConcurrentModification to both, or run both.
Only earlier runs and live operations block, so the queue cannot deadlock.

The book is a view fed by a watch, so it can lag: it decides when a run *tries*. Whether it may
*go* is decided again from a consistent read after the intent is written (``runner``), with the
same ``blockers`` over ``entries`` of that read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from emrops.api.spec import ServiceActionSpec
from emrops.api.status import RunStatus
from emrops.api.targets import Target, overlap, targets_of
from emrops.controller.machine import exclusive, holds_cluster

ClusterKey = tuple[str, str]  # (regionId, clusterId)
#: (the second, the fraction: "" for a first run, ".ffffffZ" for a re-run, namespace, name).
Order = tuple[str, str, str, str]


@dataclass(frozen=True)
class QueueEntry:
    uid: str
    namespace: str
    name: str
    order: Order
    #: Holds the cluster (see the module docstring); entries that do not are not filed.
    holds: bool
    #: Blocks every overlapping run, earlier or later.
    exclusive: bool
    targets: frozenset[Target]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def order_of(meta: Mapping[str, Any], status: RunStatus) -> Order:
    """Where a run stands in its cluster's queue (see the module docstring)."""
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    start = status.start_time or ""
    if (status.run or 1) >= 2 and len(start) > 19:
        return (start[:19], start[19:], namespace, name)
    created = str(meta.get("creationTimestamp") or "")
    return (created[:19], "", namespace, name)


def entry_of(body: Mapping[str, Any]) -> tuple[ClusterKey, QueueEntry] | None:
    """The index key and entry of one ServiceAction body; None when its spec or status is unreadable."""
    meta = body.get("metadata") or {}
    try:
        spec = ServiceActionSpec.from_body(body)
        status = RunStatus.from_dict(body.get("status"))
    except pydantic.ValidationError:
        return None
    entry = QueueEntry(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        order=order_of(meta, status),
        holds=holds_cluster(status),
        exclusive=exclusive(status),
        targets=targets_of(spec.component_instance_selector),
    )
    return (spec.region_id, spec.cluster_id), entry


def entries(bodies: Iterable[Mapping[str, Any]], key: ClusterKey) -> tuple[QueueEntry, ...]:
    """The entries of ``bodies`` (a consistent listing) that hold cluster ``key``."""
    found: list[QueueEntry] = []
    for body in bodies:
        filed = entry_of(body)
        if filed is not None and filed[0] == key and filed[1].holds:
            found.append(filed[1])
    return tuple(found)


class Book:
    """The per-cluster queue: ``ClusterKey -> {uid: QueueEntry}`` for every object holding one.

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
        version = str(meta.get("resourceVersion") or "")
        filed = self._filed.get(uid)
        if filed is not None and version and not _later(version, filed[0]):
            return  # the same object version again (a re-listing), or an older one: keep ours
        found = entry_of(body)
        if found is None or not found[1].holds:
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


def _later(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is newer than ``than`` (opaque by contract, etcd
    revisions in practice: when either is not an integer, any different version counts as newer)."""
    try:
        return int(version) > int(than)
    except ValueError:
        return version != than


def blockers(me: QueueEntry, others: Iterable[QueueEntry]) -> tuple[str, ...]:
    """``namespace/name`` of every run ``me`` must wait for, in queue order."""
    found = [
        other
        for other in others
        if other.uid != me.uid
        and other.holds
        and (other.order < me.order or other.exclusive)
        and overlap(me.targets, other.targets)
    ]
    return tuple(other.ref for other in sorted(found, key=lambda e: e.order))
