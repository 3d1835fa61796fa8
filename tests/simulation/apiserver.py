"""An in-memory apiserver for ServiceActions and Secrets, with the semantics the controller relies on.

- ``resourceVersion``: one global integer counter, bumped by every change (as etcd's revision).
- Status writes are JSON merge patches (RFC 7386: objects merge recursively, ``null`` deletes,
  lists are replaced) of the ``/status`` subresource, preconditioned on
  ``metadata.resourceVersion``: a stale version is a 409 (``kube.Conflict``), a missing object a
  404 (``kube.Gone``). A patch that changes nothing bumps nothing and emits no event. Unknown
  status fields are pruned by the CRD's structural schema, as the real apiserver does.
- ``creationTimestamp`` to the second, ``uid``, ``generation`` (metadata-only changes keep it).
- Every change is appended to one globally ordered event log (ADDED / MODIFIED / DELETED with
  the object as it is after the change), which the watch streams (``watch.py``) replay late.

``StoreView`` is one replica incarnation's client: ``kube.ObjectStore`` (plus ``list_cluster``)
over a ``network.Link``, so each request takes a random virtual latency and lands at a random
point inside it.
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import yaml

import emrops
from emrops.api.constants import API_VERSION, KIND
from emrops.api.status import format_time
from emrops.controller.apiserver import ApiError
from emrops.controller.kube import Conflict, Gone, SecretUnreadable
from simulation.network import Link

#: The CRD of the emrops under test (the repository's, or a baseline copy's on PYTHONPATH).
CRD_PATH = pathlib.Path(emrops.__file__).resolve().parents[2] / "crds" / "emrops.io_serviceactions.yaml"

Key = tuple[str, str]  # (namespace, name)


def clone(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars); faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch of ``target`` by ``patch`` (neither is modified)."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@functools.cache
def status_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    version = crd["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def prune(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop fields the structural schema does not declare (the apiserver's pruning)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        return {k: prune(v, props[k]) for k, v in value.items() if k in props}
    if isinstance(value, list) and "items" in schema:
        return [prune(v, schema["items"]) for v in value]
    return value


def labels_match(selector: str | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes equality-based label selector (``a=b``, ``a!=b``, ``a``, ``!a``, comma-joined)."""
    if not selector:
        return True
    for term in (t.strip() for t in selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term and term not in labels:
            return False
    return True


@dataclass(frozen=True)
class WatchEvent:
    index: int
    time: float
    type: str  # ADDED, MODIFIED, DELETED
    body: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One applied change, for the observers: ``before``/``after`` are None for create/delete."""

    kind: str  # create, delete, metadata, spec, status
    who: str
    key: Key
    uid: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Observer(Protocol):
    def store_request(self, who: str, op: str, key: Key, payload: Mapping[str, Any] | None) -> None: ...

    def store_applied(self, who: str, op: str, key: Key) -> None: ...

    def changed(self, change: Change) -> None: ...


class ApiServer:
    """The objects, the Secrets and the event log.

    Stored bodies are immutable snapshots: a change builds a new body (sharing what did not
    change) instead of editing the stored one, so reads, events and the ground truth can all
    hand out the snapshot itself instead of a deep copy each. ``paranoid`` hands out deep copies
    instead; the determinism test compares both, which would catch a controller that edits a
    body it was given.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        epoch: datetime,
        observer: Observer,
        *,
        paranoid: bool = False,
        preconditions: bool = True,
        hide_gates: bool = False,
    ) -> None:
        self._clock = clock
        self._epoch = epoch
        self.observer = observer
        self._out: Callable[[Any], Any] = clone if paranoid else _same
        #: False only to prove the checkers: an apiserver that ignores resourceVersion preconditions.
        self._preconditions = preconditions
        if hide_gates:  # only to prove the checkers: replicas never see suspend or the window
            shown = self._out
            self._out = lambda body: _without_gates(shown(body))
        self.rv = 1000
        self.objects: dict[Key, dict[str, Any]] = {}
        self.secrets: dict[Key, dict[str, str]] = {}
        self.log: list[WatchEvent] = []
        #: uid of every object ever created under a name (names are never reused by the scenario).
        self.uid_of: dict[Key, str] = {}
        self._uids = 0
        self._waiters: list[asyncio.Future[None]] = []

    # --- bookkeeping ------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._clock())

    def _store(self, key: Key, body: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
        """A new snapshot of ``body`` with ``metadata`` and the next resourceVersion."""
        self.rv += 1
        snapshot = {**body, "metadata": {**metadata, "resourceVersion": str(self.rv)}}
        self.objects[key] = snapshot
        return snapshot

    def _emit(self, event_type: str, body: dict[str, Any]) -> None:
        self.log.append(WatchEvent(len(self.log), self._clock(), event_type, body))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def next_event(self, index: int) -> None:
        """Wait until the log holds an event at ``index``."""
        if index < len(self.log):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def event_body(self, event: WatchEvent) -> dict[str, Any]:
        out: dict[str, Any] = self._out(event.body)
        return out

    # --- what users do (instant: kubectl's latency does not matter here) ----------------------

    def create(
        self,
        namespace: str,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        key = (namespace, name)
        if key in self.objects or key in self.uid_of:
            raise ValueError(f"{namespace}/{name} exists or existed (names are not reused)")
        self._uids += 1
        uid = f"uid-{self._uids:04d}"
        metadata = {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "generation": 1,
            "creationTimestamp": format_time(self.now()),
            "labels": dict(labels),
            "annotations": dict(annotations or {}),
        }
        body = self._store(key, {"apiVersion": API_VERSION, "kind": KIND, "spec": clone(spec)}, metadata)
        self.uid_of[key] = uid
        self._emit("ADDED", body)
        self.observer.changed(Change("create", "user", key, uid, None, body))
        return body

    def delete(self, key: Key) -> None:
        before = self.objects[key]
        # The DELETED event carries a new resourceVersion, as etcd's does.
        body = self._store(key, before, before["metadata"])
        del self.objects[key]
        self._emit("DELETED", body)
        self.observer.changed(Change("delete", "user", key, body["metadata"]["uid"], before, None))

    def set_metadata(self, key: Key, field: str, name: str, value: str | None) -> None:
        """Set (or remove, with None) one label or annotation (``field``: labels or annotations)."""
        before = self.objects[key]
        values = dict(before["metadata"].get(field) or {})
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
        if values == (before["metadata"].get(field) or {}):
            return
        body = self._store(key, before, {**before["metadata"], field: values})
        self._emit("MODIFIED", body)
        self.observer.changed(Change("metadata", "user", key, body["metadata"]["uid"], before, body))

    def set_spec(self, key: Key, name: str, value: Any) -> None:
        """Change one spec field (``kubectl patch``): the generation goes up, as for any spec change."""
        before = self.objects[key]
        if before["spec"].get(name) == value:
            return
        metadata = {**before["metadata"], "generation": int(before["metadata"].get("generation") or 1) + 1}
        body = self._store(key, {**before, "spec": {**before["spec"], name: value}}, metadata)
        self._emit("MODIFIED", body)
        self.observer.changed(Change("spec", "user", key, body["metadata"]["uid"], before, body))

    def put_secret(self, key: Key, data: dict[str, str]) -> None:
        self.secrets[key] = dict(data)

    # --- what replicas do (applied at the request's landing instant) ------------------------

    def get(self, key: Key) -> dict[str, Any]:
        body = self.objects.get(key)
        if body is None:
            raise Gone(f"{key[0]}/{key[1]}")
        out: dict[str, Any] = self._out(body)
        return out

    def patch_status(
        self, who: str, key: Key, patch: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        before = self.objects.get(key)
        if before is None:
            raise Gone(f"{key[0]}/{key[1]}")
        if self._preconditions and before["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f"{key[0]}/{key[1]} changed since resourceVersion {resource_version}")
        status = prune(merge_patch(before.get("status"), patch), status_schema())
        if status == before.get("status"):
            out: dict[str, Any] = self._out(before)
            return out  # a no-op patch: no new version, no event
        body = self._store(key, {**before, "status": status}, before["metadata"])
        self._emit("MODIFIED", body)
        self.observer.changed(Change("status", who, key, body["metadata"]["uid"], before, body))
        out = self._out(body)
        return out

    def read_secret(self, key: Key) -> dict[str, str]:
        data = self.secrets.get(key)
        if data is None:
            raise SecretUnreadable(f"Secret {key[0]}/{key[1]} (spec.credentialsSecretRef) not found")
        return dict(data)

    def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        """Every ServiceAction on one cluster, as of now (a quorum read: linearizable)."""
        return [
            self._out(body)
            for _key, body in sorted(self.objects.items())
            if body["spec"].get("regionId") == region_id and body["spec"].get("clusterId") == cluster_id
        ]

    def list_all(self, selector: str | None) -> tuple[int, list[dict[str, Any]]]:
        """A listing for a watch: (the log position it is consistent with, bodies in key order)."""
        bodies = [
            self._out(body)
            for _key, body in sorted(self.objects.items())
            if labels_match(selector, body["metadata"].get("labels") or {})
        ]
        return len(self.log), bodies


def _same(value: Any) -> Any:
    return value


class StoreFaults:
    """Apiserver trouble injected into replica requests (the fault phase only)."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self._rng = rng
        self.rate = rate

    def draw(self) -> str | None:
        """None, ``"refused"`` (a 5xx before anything happened) or ``"lost"`` (applied, no answer)."""
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        return "refused" if self._rng.random() < 0.5 else "lost"


class StoreView:
    """One replica incarnation's ``kube.ObjectStore`` (and ``list_cluster``) on the ``ApiServer``."""

    def __init__(
        self, server: ApiServer, who: str, link: Link, rng: random.Random, faults: StoreFaults
    ) -> None:
        self._server = server
        self._who = who
        self._link = link
        self._rng = rng
        self._faults = faults

    def _latency(self) -> float:
        if self._rng.random() < 0.02:
            return self._rng.uniform(0.2, 3.0)  # a slow apiserver moment
        return self._rng.uniform(0.002, 0.03)

    async def _call(
        self, op: str, key: Key, payload: Mapping[str, Any] | None, apply: Callable[[], Any]
    ) -> Any:
        server = self._server
        server.observer.store_request(self._who, op, key, payload)
        fault = self._faults.draw()

        def landed() -> Any:
            if fault == "refused":
                raise ApiError(503, "injected: apiserver unavailable")
            server.observer.store_applied(self._who, op, key)
            result = apply()
            if fault == "lost":
                raise TimeoutError("injected: the apiserver's answer was lost")
            return result

        return await self._link.call(landed, self._latency())

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        key = (namespace, name)
        found: dict[str, Any] = await self._call("get", key, None, lambda: self._server.get(key))
        return found

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        key = (namespace, name)
        patch = clone(status)
        written: dict[str, Any] = await self._call(
            "patch", key, patch, lambda: self._server.patch_status(self._who, key, patch, resource_version)
        )
        return written

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        key = (namespace, name)
        data: dict[str, str] = await self._call("secret", key, None, lambda: self._server.read_secret(key))
        return data

    async def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        key = (region_id, cluster_id)
        found: list[dict[str, Any]] = await self._call(
            "list", key, None, lambda: self._server.list_cluster(region_id, cluster_id)
        )
        return found


def _without_gates(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without spec.suspend, spec.notBefore and spec.notAfter (the ignore-gates sabotage)."""
    spec = {k: v for k, v in body["spec"].items() if k not in ("suspend", "notBefore", "notAfter")}
    return {**body, "spec": spec}
