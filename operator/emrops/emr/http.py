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

import base64
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from emrops.emr.errors import RequestNotSentError

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
    """One signed request; ``url`` is already percent-encoded exactly as it is to be sent.

    ``idempotent`` is False for a request that has an effect (RunApplicationAction): the transport
    sends it on a connection of its own (below). ``headers`` hold the signature and any STS token,
    so they are left out of the repr (a traceback rendered with its locals shows reprs).
    """

    method: str
    url: URL
    headers: Mapping[str, str] = field(repr=False)
    idempotent: bool = True


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """An answer, read whole. ``headers`` look up case-insensitively."""

    status_code: int
    content: bytes
    headers: CIMultiDictProxy[str]

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
    """``HttpRequest`` over aiohttp: TLS verified, no redirects, proxies from the environment.

    - **Two pools.** Reads go over kept-alive connections. A request with an effect
      (``idempotent=False``) gets a new connection, closed after its answer: a reused connection
      can hold an answer that arrived while it was idle (aiohttp does not look before reusing
      one), which would be read as this request's answer, and a server may close an idle
      connection just as the request goes out, which makes its outcome unknown. A handshake per
      submission is cheap next to either.
    - **Only our headers.** The request carries the headers we signed, plus what HTTP/1.1 needs
      (Content-Length, Connection); aiohttp's automatic Content-Type and Accept-Encoding are
      skipped: ACS3 signs Content-Type whenever it is present, and the SDK sends neither.
    - **Proxies** come from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``, read
      once, as the SDK and httpx honour them. aiohttp's ``trust_env`` is not used: it also reads
      ``~/.netrc`` at every request (in a thread), and an entry there for the EMR host would add an
      Authorization header of its own.
    - **Lifecycle.** The sessions are made at the first request (an aiohttp session belongs to
      the event loop it is made in); the TLS context is made now, so a broken CA bundle fails at
      startup. Once closed, the transport sends nothing.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        proxies: Mapping[str, str] | None = None,
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
        self._proxies = dict(urllib.request.getproxies_environment() if proxies is None else proxies)
        self._proxy_of: dict[tuple[str, str], tuple[URL | None, dict[str, str] | None]] = {}
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def max_connections(self) -> int:
        return self._max_connections

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return self._ssl

    def _session(self, *, reuse: bool) -> aiohttp.ClientSession:
        if self._closed:
            raise RequestNotSentError("the EMR client's transport is closed")
        session = self._pooled if reuse else self._fresh
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=self._ssl,
                **({"keepalive_timeout": self._keepalive_expiry} if reuse else {"force_close": True}),
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("Content-Type", "Accept-Encoding"),
            )
            if reuse:
                self._pooled = session
            else:
                self._fresh = session
        return session

    def proxy_for(self, url: URL) -> tuple[URL | None, dict[str, str] | None]:
        """The proxy for ``url`` (None: go direct) and its Proxy-Authorization header."""
        key = (url.scheme, url.raw_authority)
        if key not in self._proxy_of:
            self._proxy_of[key] = _proxy_for(url, self._proxies)
        return self._proxy_of[key]

    async def send(self, request: HttpRequest) -> HttpResponse:
        proxy, proxy_headers = self.proxy_for(request.url)
        headers = request.headers
        if proxy_headers and request.url.scheme == "http":
            # Sent to the proxy in the request itself (aiohttp puts proxy_headers on a tunnel's
            # CONNECT only, and plain http has no tunnel).
            headers = {**headers, **proxy_headers}
        async with self._session(reuse=request.idempotent).request(
            request.method,
            request.url,
            headers=headers,
            allow_redirects=False,
            proxy=proxy,
            proxy_headers=proxy_headers,
        ) as response:
            # Read whole: the connection goes back to the pool at once.
            return HttpResponse(response.status, await response.read(), response.headers)

    async def aclose(self) -> None:
        self._closed = True
        sessions = [s for s in (self._pooled, self._fresh) if s is not None]
        self._pooled = self._fresh = None
        for session in sessions:
            await session.close()


def _proxy_for(url: URL, proxies: Mapping[str, str]) -> tuple[URL | None, dict[str, str] | None]:
    """``proxies`` (as ``urllib.request.getproxies_environment`` returns them) applied to ``url``."""
    if _bypassed(url.raw_host or "", proxies.get("no", "")):
        return None, None
    chosen = proxies.get(url.scheme) or proxies.get("all")
    if not chosen:
        return None, None
    proxy = URL(chosen if "://" in chosen else f"http://{chosen}")
    if proxy.user is None and proxy.password is None:
        return proxy, None
    # Credentials go in a header of their own, never in the URL that errors may quote.
    token = base64.b64encode(f"{proxy.user or ''}:{proxy.password or ''}".encode()).decode("ascii")
    return proxy.with_user(None), {"Proxy-Authorization": f"Basic {token}"}


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma-separated hosts, domains, or ``*``) names ``host``.

    As curl and httpx read it: an entry matches the host itself and every name under it, with
    or without a leading dot; IP addresses match exactly.
    """
    host = host.lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower().lstrip(".").strip("[]")
        if entry == "*":
            return True
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False
