"""A small async Kubernetes client for benchmarks and fault tests, and a watch that timestamps events.

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

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from bench.harness import GROUP, PLURAL, TERMINAL_PHASES, VERSION


class Kube:
    """Thin async wrapper over kubernetes_asyncio for ServiceActions, Secrets and Namespaces."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    @classmethod
    async def from_kubeconfig(cls, path: str) -> Kube:
        api = await config.new_client_from_config(config_file=path)
        # The default pool (4) would serialise a burst of creates behind a handful of sockets.
        api.rest_client.pool_manager.connector._limit = 64
        return cls(api)

    async def close(self) -> None:
        await self.api.close()

    async def ensure_namespace(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            await self.core.create_namespace({"metadata": {"name": name}})

    async def create_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        body = {"metadata": {"name": name}, "stringData": dict(data), "type": "Opaque"}
        await self.core.create_namespaced_secret(namespace, body)

    async def create(self, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        result = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, dict(manifest)
        )
        return dict(result)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        result = await self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return dict(result)

    async def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            result = await self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        else:
            result = await self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        return list(result["items"])

    async def annotate(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        await self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json"
        )

    async def delete_all(self, namespace: str) -> None:
        with contextlib.suppress(ApiException):
            await self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)

    async def events(self, namespace: str) -> list[dict[str, Any]]:
        result = await self.core.list_namespaced_event(namespace)
        return [self.api.sanitize_for_serialization(item) for item in result.items]

    async def create_many(
        self, namespace: str, manifests: Iterable[Mapping[str, Any]], *, concurrency: int = 32
    ) -> dict[str, float]:
        """Create objects concurrently; return each name's monotonic time just before its create call."""
        started: dict[str, float] = {}
        queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        for manifest in manifests:
            queue.put_nowait(manifest)

        async def worker() -> None:
            while not queue.empty():
                manifest = queue.get_nowait()
                started[manifest["metadata"]["name"]] = time.monotonic()
                await self.create(namespace, manifest)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return started


@dataclass
class Track:
    """What the recorder saw of one ServiceAction."""

    added: float | None = None
    operation_id_at: float | None = None
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
        listing = await self.kube.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
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
            w = watch.Watch()
            try:
                async with w.stream(
                    self.kube.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    resource_version=self._rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                ) as stream:
                    async for event in stream:
                        now = time.monotonic()
                        obj = event["object"]
                        kind = event["type"]
                        if kind == "ERROR":
                            raise ApiException(status=obj.get("code", 500), reason=str(obj.get("message")))
                        self._rv = obj.get("metadata", {}).get("resourceVersion", self._rv)
                        if kind != "BOOKMARK":
                            self._observe(kind, obj, now)
            except asyncio.CancelledError:
                raise
            except ApiException as exc:
                self.watch_restarts += 1
                if exc.status == 410:
                    # Too old: relist and take whatever changed as fresh observations.
                    self._rv = None
                    with contextlib.suppress(Exception):
                        listing = await self.kube.custom.list_namespaced_custom_object(
                            GROUP, VERSION, self.namespace, PLURAL
                        )
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
