"""The operator's own apiserver client: plain httpx, kopf's credentials, one bounded pool.

Why not ``kubernetes_asyncio`` (or the official client's async API): every request the operator
makes is a handful of JSON paths (a status merge patch, a get, a list, a Secret, a Lease, an
Event), and the generated clients cost 17-60 MiB of modules for them. httpx is already loaded for
EMR, so this costs nothing in imports.

- **Credentials** come from a ``Login`` function returning a ``kopf.ConnectionInfo`` (in-cluster
  ServiceAccount or kubeconfig, as kopf's own watch uses: ``controller.login``). The token is read
  again on a 401 and the request is sent once more: a projected ServiceAccount token is rotated on
  disk while the process runs, as kopf re-logs in on its 401s too.
- **One bounded pool**: at most ``max_connections`` requests are in flight; the rest wait on a
  semaphore of our own, never inside httpx's pool (a caller cancelled while queued there can leave
  the pool unable to hand out connections: see ``emrops.emr.client``). A thousand workers writing
  status at once therefore share a few keep-alive connections instead of opening one each (each
  TLS connection holds about 128 KiB of buffers).
- **A priority lane**: requests made inside ``priority()`` (a worker's submission: the intent,
  the re-check, the record of the call) wait on a few slots of their own, so a submission is not
  queued behind a thousand other objects' writes while the clock of its intent runs.
- **Errors** are ``ApiError`` with the HTTP status and the apiserver's ``Status.message``; the
  request's Authorization header is never part of any message.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import httpx

from emrops import __version__

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
#: Concurrent requests to the apiserver (status writes, reads, Events, the Lease). client-go's
#: default rate limit is 5 qps / burst 10; 8 in flight keeps a burst's writes pipelined on
#: keep-alive connections without a connection per worker.
DEFAULT_MAX_CONNECTIONS = 8
#: Connections of the priority lane, on top of ``max_connections``.
DEFAULT_PRIORITY_CONNECTIONS = 4

_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("emrops_apiserver_priority", default=False)


@contextlib.contextmanager
def priority() -> Iterator[None]:
    """Requests made in this block (in this task) use the priority lane."""
    token = _PRIORITY.set(True)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


class Credentials(Protocol):
    """What the client needs of a ``kopf.ConnectionInfo``."""

    @property
    def server(self) -> str: ...

    @property
    def proxy_url(self) -> str | None: ...

    @property
    def trust_env(self) -> bool: ...

    def as_http_headers(self) -> dict[str, str]: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...


#: Returns the current credentials (reading the token file or kubeconfig again each call).
Login = Callable[[], Credentials]


class ApiError(Exception):
    """The apiserver answered with an error status (``status``), or did not answer (``status`` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message


def _tls_of(info: Credentials) -> tuple[Any, ...]:
    """What the transport is built from; a change of any of it needs a new client."""
    fields = ("server", "ca_path", "ca_data", "insecure", "certificate_path", "certificate_data")
    return (*(getattr(info, name, None) for name in fields), getattr(info, "private_key_data", None))


class ApiClient:
    """JSON requests to the apiserver (``request``), authenticated with ``login``'s credentials."""

    def __init__(
        self,
        login: Login,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        priority_connections: int = DEFAULT_PRIORITY_CONNECTIONS,
        timeout: float = 30.0,
    ) -> None:
        self._login = login
        self._max = max_connections + priority_connections
        self._timeout = timeout
        self._info = login()
        self._client = self._transport(self._info)
        self._retired: list[httpx.AsyncClient] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._priority_slots = asyncio.Semaphore(priority_connections) if priority_connections else None

    def _transport(self, info: Credentials) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=info.server,
            verify=info.as_ssl_context(),
            proxy=info.proxy_url,
            trust_env=info.trust_env,
            limits=httpx.Limits(max_connections=self._max, max_keepalive_connections=self._max),
            timeout=httpx.Timeout(self._timeout, connect=min(10.0, self._timeout)),
            headers={"User-Agent": f"emrops/{__version__}", "Accept": JSON},
        )

    @property
    def server(self) -> str:
        return self._info.server

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = JSON,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request; return the decoded JSON answer. Raises ``ApiError`` (4xx/5xx, transport)."""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        lane = self._priority_slots if self._priority_slots and _PRIORITY.get() else self._slots
        async with lane:
            response = await self._send(method, path, params, content, content_type, request_timeout)
            if response.status_code == 401:
                # A rotated token (projected ServiceAccount tokens are replaced on disk): read it again.
                self._relogin()
                response = await self._send(method, path, params, content, content_type, request_timeout)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message(response))
        answer: dict[str, Any] = response.json() if response.content else {}
        return answer

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        content_type: str,
        request_timeout: float | None,
    ) -> httpx.Response:
        headers = dict(self._info.as_http_headers())
        if content is not None:
            headers["Content-Type"] = content_type
        try:
            return await self._client.request(
                method,
                path,
                params=dict(params) if params else None,
                content=content,
                headers=headers,
                timeout=request_timeout if request_timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            # The exception's text names the URL at most; the headers (the token) never appear.
            raise ApiError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from None

    def _relogin(self) -> None:
        info = self._login()
        if _tls_of(info) != _tls_of(self._info):
            # A new server, CA or client certificate: requests in flight finish on the old client.
            self._retired.append(self._client)
            self._client = self._transport(info)
        self._info = info

    async def aclose(self) -> None:
        for client in (*self._retired, self._client):
            await client.aclose()
        self._retired.clear()


def _message(response: httpx.Response) -> str:
    """The apiserver's ``Status.message`` (or the reason phrase), short."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:500]
    return response.reason_phrase or f"HTTP {response.status_code}"
