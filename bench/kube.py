"""A small async Kubernetes client for benchmarks and fault tests, and a watch that timestamps events.

The recorder is how the benchmark measures latency: it watches the apiserver (no polling), stamps
every event with ``time.monotonic()`` on arrival, and keeps, per object, the first time each phase
and the ``operationId`` were seen, plus how many MODIFIED events (writes) the object received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import kopf

from bench.harness import GROUP, PLURAL, TERMINAL_PHASES, VERSION

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The apiserver answered ``status`` (an HTTP error code)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def _collection(namespace: str | None) -> str:
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


class Kube:
    """Thin async httpx client for ServiceActions, Secrets, Namespaces and Events (admin kubeconfig).

    No generated Kubernetes client: the same few JSON paths the operator uses, with kopf's
    kubeconfig login for the address and the client certificate.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    @classmethod
    async def from_kubeconfig(cls, path: str, *, max_connections: int = 64) -> Kube:
        return cls(client_from_kubeconfig(path, max_connections=max_connections))

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        **params: Any,
    ) -> dict[str, Any]:
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if content is not None else {}
        response = await self.http.request(
            method, path, content=content, headers=headers, params=params or None
        )
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text[:300])
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    async def ensure_namespace(self, name: str) -> None:
        with contextlib.suppress(ApiError):
            await self.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})

    async def create_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        body = {"metadata": {"name": name}, "stringData": dict(data), "type": "Opaque"}
        await self.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)

    async def create(self, namespace: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", _collection(namespace), body=dict(manifest))

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.request("GET", f"{_collection(namespace)}/{name}")

    async def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return list((await self.list_with_version(namespace))["items"])

    async def list_with_version(self, namespace: str | None = None) -> dict[str, Any]:
        return await self.request("GET", _collection(namespace))

    async def patch_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request(
            "PATCH", f"{_collection(namespace)}/{name}/status", body=dict(patch), content_type=MERGE_PATCH
        )

    async def annotate(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        await self.request("PATCH", f"{_collection(namespace)}/{name}", body=body, content_type=MERGE_PATCH)

    async def delete_all(self, namespace: str) -> None:
        with contextlib.suppress(ApiError):
            await self.request("DELETE", _collection(namespace))

    async def events(self, namespace: str) -> list[dict[str, Any]]:
        return list((await self.request("GET", f"/api/v1/namespaces/{namespace}/events"))["items"])

    async def watch(
        self, namespace: str, resource_version: str | None, *, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """The namespace's ServiceAction watch events (``{"type", "object"}``), one per line."""
        params: dict[str, Any] = {
            "watch": "1",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        timeout = httpx.Timeout(timeout_seconds + 30, connect=10)
        async with self.http.stream(
            "GET", _collection(namespace), params=params, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                raise ApiError(response.status_code, (await response.aread()).decode()[:300])
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

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


def client_from_kubeconfig(path: str, *, max_connections: int = 64) -> httpx.AsyncClient:
    """An httpx client authenticated by ``path`` (a kubeconfig), through kopf's kubeconfig login."""
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = path
    try:
        info = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
    assert info is not None, f"no credentials in {path}"
    return httpx.AsyncClient(
        base_url=info.server,
        verify=info.as_ssl_context(),
        headers=info.as_http_headers(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx.Timeout(60, connect=10),
    )


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
