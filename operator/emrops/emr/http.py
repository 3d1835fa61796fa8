"""The EMR client's HTTP layer: one request and its answer as plain values, sent over aiohttp.

``EmrClient`` builds an ``HttpRequest`` (``wire.build_request``) and hands it to a ``Transport``;
the answer comes back as an ``HttpResponse`` whose body is read whole. The default transport is
``AiohttpTransport``: kopf already loads aiohttp, and it costs a fraction of httpx's CPU per
request (``bench/http_clients.py``: 0.2-0.4 ms against 1.1-3.4 ms for the same exchange). Tests
pass a transport of their own (any object with ``send`` and ``aclose``), so what the client puts
on the wire is checked without a socket, and ``tests/unit/emr/test_emr_client_wire.py`` checks the
same bytes over one.

What the transport raises is aiohttp's own exceptions (or ``TimeoutError``); ``aiohttp_errors``
is the one place they become "not sent" or "outcome unknown".
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

#: The SDK's connect timeout: a connection not up by then was never used.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: The SDK's read timeout: the longest silence while waiting for or reading an answer.
DEFAULT_READ_TIMEOUT = 10.0
#: Connections open at once (and so requests in flight) per client.
DEFAULT_MAX_CONNECTIONS = 20
#: An idle connection is closed by us after this long, before a server would close it: a request
#: on a connection the server has just closed has an unknown outcome.
DEFAULT_KEEPALIVE_EXPIRY = 4.0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One signed request; ``url`` is already percent-encoded exactly as it is to be sent."""

    method: str
    url: URL
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An answer, read whole. ``headers`` look up case-insensitively."""

    status_code: int
    content: bytes = b""
    headers: CIMultiDictProxy[str] = field(default_factory=lambda: CIMultiDictProxy(CIMultiDict()))

    @classmethod
    def of(
        cls, status_code: int, content: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        return cls(status_code, content, CIMultiDictProxy(CIMultiDict(headers or {})))


class Transport(Protocol):
    """Sends one request and returns its answer; raises aiohttp's exceptions or ``TimeoutError``."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """``HttpRequest`` over one aiohttp session: TLS verified, no redirects, proxies from the environment.

    The session is made at the first request (an aiohttp session belongs to the event loop it is
    made in); the TLS context is made now, so a broken CA bundle fails at startup.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
    ) -> None:
        # Verification stays on: an endpoint we cannot verify would get our signed requests and
        # STS tokens. The system's CA bundle (SSL_CERT_FILE overrides it, as for any OpenSSL client).
        self._ssl = ssl.create_default_context()
        # ``connect`` bounds setting up a connection (TCP, a proxy's tunnel, TLS); it cannot
        # include a wait for a free one because the client never has more requests in flight
        # than connections. There is no total: the client's own deadline is the total.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    @property
    def max_connections(self) -> int:
        return self._max_connections

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=self._keepalive_expiry, ssl=self._ssl
                ),
                timeout=self._timeout,
                # HTTPS_PROXY / NO_PROXY from the environment, as the SDK honours them.
                trust_env=True,
            )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        async with self._open().request(
            request.method,
            request.url,
            headers=request.headers,
            allow_redirects=False,
        ) as response:
            # Read whole: the connection goes back to the pool at once.
            return HttpResponse(response.status, await response.read(), response.headers)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
