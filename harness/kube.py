"""The Kubernetes API as the tests and the bench use it.

- ``Kube``: kubectl in one namespace through the control plane's launcher, plus the waits the
  tests need (polling the apiserver); what the test suites use.
- ``AsyncKube``: a small async httpx client on the same few JSON paths the operator uses, for the
  bench's concurrent creates and watches (and its recorder, ``bench/recorder.py``).
- ``restart_apiserver``: stop kube-apiserver and start it again on the same etcd and port.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
import kopf

from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, GROUP, PLURAL, SECRET_NAME, VERSION
from harness.processes import wait_for
from harness.status import ACKNOWLEDGED_AT, TERMINAL_PHASES, phase, summaries

Objects = dict[str, dict[str, Any]]
T = TypeVar("T")


class Kube:
    """kubectl in one namespace (``cp`` is the control plane's launcher), and waits on its objects."""

    def __init__(self, cp: Any, namespace: str) -> None:
        self.cp = cp
        self.namespace = namespace

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, namespaced: bool = True
    ) -> subprocess.CompletedProcess[str]:
        ns = ("-n", self.namespace) if namespaced else ()
        result: subprocess.CompletedProcess[str] = self.cp.kubectl(*ns, *args, input=input, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str, namespaced: bool = True) -> Any:
        """``kubectl get ... -o json``'s answer."""
        return json.loads(self.kubectl("get", *args, "-o", "json", namespaced=namespaced).stdout)

    def _objects(self, verb: str, objs: Iterable[Mapping[str, Any]]) -> None:
        items = [{**o, "metadata": {**o.get("metadata", {}), "namespace": self.namespace}} for o in objs]
        body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl(verb, "-f", "-", input=body)

    def create(self, *objs: Mapping[str, Any]) -> None:
        self._objects("create", objs)

    def apply(self, *objs: Mapping[str, Any]) -> None:
        self._objects("apply", objs)

    def create_secret(
        self, name: str = SECRET_NAME, key_id: str = ACCESS_KEY_ID, key_secret: str = ACCESS_KEY_SECRET
    ) -> None:
        self.kubectl(
            "create",
            "secret",
            "generic",
            name,
            f"--from-literal=accessKeyId={key_id}",
            f"--from-literal=accessKeySecret={key_secret}",
        )

    def all(self) -> Objects:
        """The namespace's ServiceActions by name."""
        return {o["metadata"]["name"]: o for o in self.json("serviceactions.emrops.io")["items"]}

    def get(self, name: str) -> dict[str, Any]:
        return dict(self.json("serviceactions.emrops.io", name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def annotate(self, name: str, key: str, value: str) -> None:
        self.kubectl("annotate", "--overwrite", f"serviceactions.emrops.io/{name}", f"{key}={value}")

    def wait_until(
        self, what: str, check: Callable[[Objects], bool], timeout: float = 120, interval: float = 0.5
    ) -> Objects:
        """Poll all ServiceActions of the namespace until ``check(objects)`` holds."""
        deadline = time.monotonic() + timeout
        objs: Objects = {}
        while time.monotonic() < deadline:
            objs = self.all()
            if check(objs):
                return objs
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; now:\n{summaries(objs)}")

    def wait_phase(
        self, names: Iterable[str], phases: Iterable[str] = TERMINAL_PHASES, timeout: float = 120
    ) -> Objects:
        names, wanted = list(names), set(phases)
        return self.wait_until(
            f"{names} in {sorted(wanted)}",
            lambda objs: all(phase(objs.get(n, {})) in wanted for n in names),
            timeout,
        )

    def wait_phase_acknowledging(
        self, names: Iterable[str], timeout: float = 240, value: str = "checked by the test"
    ) -> Objects:
        """Like ``wait_phase``, acting as the careful person an Unknown run asks for.

        An Unknown run keeps later overlapping runs Queued until someone acknowledges it
        (``emrops.io/acknowledged-at``). Once every object is finished or Queued behind Unknown
        runs only, this acknowledges those runs and waits for everything to finish.
        """
        names = list(names)
        namespace = self.namespace

        def stuck_or_done(objs: Objects) -> bool:
            unknown = {f"{namespace}/{n}" for n in names if phase(objs.get(n, {})) == "Unknown"}
            for n in names:
                obj = objs.get(n, {})
                if phase(obj) in TERMINAL_PHASES:
                    continue
                waiting = set((obj.get("status") or {}).get("waitingFor") or ())
                if phase(obj) != "Queued" or not waiting or not waiting <= unknown:
                    return False
            return True

        objs = self.wait_until(f"{names} finished or queued behind Unknown runs", stuck_or_done, timeout)
        for n in names:
            if phase(objs.get(n, {})) == "Unknown":
                self.annotate(n, ACKNOWLEDGED_AT, value)
        return self.wait_phase(names, timeout=timeout)

    def hold(
        self, what: str, check: Callable[[Objects], bool], seconds: float, interval: float = 0.3
    ) -> None:
        """Assert that ``check(objects)`` stays true for ``seconds`` (a negative property: nothing
        happens that should not; polled, so it can only miss changes that undo themselves)."""
        deadline = time.monotonic() + seconds
        while True:
            objs = self.all()
            if not check(objs):
                raise AssertionError(f"{what} stopped holding; now:\n{summaries(objs)}")
            if time.monotonic() >= deadline:
                return
            time.sleep(interval)

    def create_in_one_second(
        self, build: Callable[[int], list[dict[str, Any]]], tries: int = 5
    ) -> list[dict[str, Any]]:
        """Create ``build(n)``'s objects with one kubectl call until their creationTimestamps are equal
        (one-second resolution); objects of a failed try are deleted and the next try gets new names.
        Returns the objects as created."""
        for attempt in range(tries):
            objs = build(attempt)
            names = [o["metadata"]["name"] for o in objs]
            self.create(*objs)
            created = self.all()
            if len({created[n]["metadata"]["creationTimestamp"] for n in names}) == 1:
                return [created[n] for n in names]
            self.kubectl("delete", "serviceactions.emrops.io", *names, "--wait=true")
        raise AssertionError(f"could not create objects within one second in {tries} tries")


def wait_new_second(after: str) -> None:
    """Wait until the wall clock is past the second after the RFC 3339 timestamp ``after``, so an
    object created next has a creationTimestamp at least one second later."""
    moment = datetime.fromisoformat(after.replace("Z", "+00:00")).timestamp()
    remaining = moment + 1.05 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def restart_apiserver(cp: Any, *, down_seconds: float = 2.0) -> None:
    """Stop kube-apiserver and start it again on the same etcd, port and certificates (the
    launcher's managed process, same argv), and wait until it is ready."""
    process = cp._apiserver
    process.stop(cp.stop_grace)
    time.sleep(down_seconds)
    process.start()
    wait_for(lambda: cp._get("/readyz")[0] == 200, timeout=120, interval=0.2, what="kube-apiserver /readyz")


# --- async ----------------------------------------------------------------------------------

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


class AsyncKube:
    """Thin async httpx client for ServiceActions, Secrets, Namespaces and Events (admin kubeconfig).

    No generated Kubernetes client: the same few JSON paths the operator uses, with kopf's
    kubeconfig login for the address and the client certificate.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    @classmethod
    async def from_kubeconfig(cls, path: str, *, max_connections: int = 64) -> AsyncKube:
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

    async def events(self, namespace: str) -> builtins.list[dict[str, Any]]:
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

        async def create(manifest: Mapping[str, Any]) -> None:
            started[manifest["metadata"]["name"]] = time.monotonic()
            await self.create(namespace, manifest)

        await each_concurrently(manifests, create, concurrency=concurrency)
        return started


async def each_concurrently(
    items: Iterable[T], work: Callable[[T], Awaitable[None]], *, concurrency: int
) -> None:
    """``work`` on every item, ``concurrency`` at a time: each of as many workers takes the next
    item as soon as its last one is done (a slow item holds up no other), in the items' order."""
    queue: asyncio.Queue[T] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def client_from_kubeconfig(path: str, *, max_connections: int = 64) -> httpx.AsyncClient:
    """An httpx client authenticated by ``path`` (a kubeconfig), through kopf's kubeconfig login."""
    info = login_from_kubeconfig(path)
    return httpx.AsyncClient(
        base_url=info.server,
        verify=info.as_ssl_context(),
        headers=info.as_http_headers(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        timeout=httpx.Timeout(60, connect=10),
    )


def login_from_kubeconfig(path: str) -> kopf.ConnectionInfo:
    """kopf's kubeconfig login for ``path`` (``KUBECONFIG`` is set only while it reads)."""
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
    return info
