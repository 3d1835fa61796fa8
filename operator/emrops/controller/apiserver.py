"""The operator's own apiserver client: aiohttp (kopf's own client), kopf's credentials, one bounded pool.

Why aiohttp: every request the operator makes is a handful of JSON paths (a status merge patch, a
get, a list, a Secret, a Lease, an Event). The generated Kubernetes clients cost 17-60 MiB of
modules for them; kopf already loads aiohttp for its watches, so this costs nothing in imports.
httpx did it before and cost about ten times the CPU per request (1.2-3.2 ms against 0.27-0.46 ms
for a TLS merge patch with a 2 KB answer, 1 to 32 at a time, measured on the same machine): in a
burst, the operator's requests to the apiserver were 42% of its CPU.

- **Credentials** come from a ``Login`` function returning a ``kopf.ConnectionInfo`` (in-cluster
  ServiceAccount or kubeconfig, as kopf's own watch uses: ``controller.login``). The token is read
  again on a 401 and the request is sent once more: a projected ServiceAccount token is rotated on
  disk while the process runs, as kopf re-logs in on its 401s too.
- **One bounded pool**: at most ``max_connections`` requests are in flight; the rest wait on a
  semaphore of our own, which also orders the lanes below. A thousand workers writing status at
  once therefore share a few keep-alive connections instead of opening one each (each TLS
  connection holds about 128 KiB of buffers).
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

import aiohttp

from emrops import __version__
from emrops.redaction import exception_text

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
    """What the transport is built from; a change of any of it needs a new session."""
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
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(10.0, timeout))
        self._info = login()
        #: Built now, as httpx did: a bad CA or client certificate fails here, not at every request.
        self._ssl = self._info.as_ssl_context()
        #: Made at the first request: an aiohttp session belongs to the event loop it is made in.
        self._session: aiohttp.ClientSession | None = None
        self._retired: list[aiohttp.ClientSession] = []
        self._closed = False
        self._slots = asyncio.Semaphore(max_connections)
        self._priority_slots = asyncio.Semaphore(priority_connections) if priority_connections else None

    def _transport(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ApiError(0, "the apiserver client is closed")
        if self._session is None:
            info = self._info
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max, ssl=self._ssl),
                headers={"User-Agent": f"emrops/{__version__}", "Accept": JSON},
                timeout=self._timeout,
                trust_env=info.trust_env,
            )
        return self._session

    @property
    def server(self) -> str:
        return self._info.server

    @property
    def closed(self) -> bool:
        return self._closed

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
            sent = await self._send(method, path, params, content, content_type, request_timeout)
            if sent[0] == 401:
                # A rotated token (projected ServiceAccount tokens are replaced on disk): read it again.
                self._relogin()
                sent = await self._send(method, path, params, content, content_type, request_timeout)
        status, raw, reason = sent
        if not 200 <= status < 300:  # a redirect too: it is not followed (httpx did not either)
            raise ApiError(status, _message(raw, reason, status))
        try:
            answer: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:  # a proxy's HTML page, say: still an answer that is not the apiserver's
            raise ApiError(status, f"{method} {path}: the answer is not JSON") from None
        return answer

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        content: bytes | None,
        content_type: str,
        request_timeout: float | None,
    ) -> tuple[int, bytes, str]:
        """The status, body and reason phrase of one exchange (the body read whole: the
        connection goes back to the pool at once)."""
        headers = dict(self._info.as_http_headers())
        if content is not None:
            headers["Content-Type"] = content_type
        # Always a ClientTimeout: aiohttp reads ``timeout=None`` as "no timeout at all".
        timeout = (
            self._timeout
            if request_timeout is None
            else aiohttp.ClientTimeout(total=request_timeout, sock_connect=self._timeout.sock_connect)
        )
        try:
            async with self._transport().request(
                method,
                self._info.server.rstrip("/") + path,
                params={k: str(v) for k, v in params.items()} if params else None,
                data=content,
                headers=headers,
                proxy=self._info.proxy_url,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                return response.status, await response.read(), response.reason or ""
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            # aiohttp's texts name a URL at most (never the headers, so never the token), but a
            # proxy's URL may carry a password: exception_text cuts any userinfo out. OSError and
            # ValueError: what aiohttp raises unwrapped (a header it refuses, a .netrc with trust_env).
            failure = ApiError(0, f"{method} {path}: {exception_text(exc, empty='no answer in time')}")
        raise failure  # outside the except: no __context__ (its request_info holds the headers)

    def _relogin(self) -> None:
        info = self._login()
        if _tls_of(info) != _tls_of(self._info):
            self._ssl = info.as_ssl_context()  # raises before anything is swapped
            if self._session is not None:
                # A new server, CA or client certificate: requests in flight finish on the old session.
                self._retired.append(self._session)
                self._session = None
        self._info = info

    async def aclose(self) -> None:
        self._closed = True
        sessions = [*self._retired, *([self._session] if self._session is not None else [])]
        self._retired.clear()
        self._session = None
        for session in sessions:
            await session.close()


def _message(raw: bytes, reason: str, status: int) -> str:
    """The apiserver's ``Status.message`` (or the reason phrase), short."""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"])[:500]
    return reason or f"HTTP {status}"
