"""The per-cluster queue: which unfinished runs a ServiceAction must wait for.

Pure. The kopf index (``handlers.serviceactions_by_cluster``) keeps one ``QueueEntry`` per object
under its (regionId, clusterId); ``blockers`` reads it. A run waits for every unfinished run on
the same cluster whose targets overlap its own and that either started earlier (creation order,
or the time a re-run was accepted) or is already in flight (Submitting, Running): EMR would
answer ConcurrentModification to both. Only earlier runs block, so the queue cannot deadlock.
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
