"""``EmrClient``: the async EMR OpenAPI client.

One HTTP transport underneath (``emr.http``: aiohttp, connections reused across calls), one typed
method per action, no retries: every failure is raised as an ``emrops.emr.errors`` exception
whose ``.classification`` tells the caller what it may do next.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

import aiohttp
from pydantic import BaseModel
from yarl import URL

import emrops
from emrops.emr.aiohttp_errors import translated
from emrops.emr.credentials import Credential, CredentialsProvider
from emrops.emr.endpoints import Network, parse_endpoint_override, resolve_endpoint
from emrops.emr.errors import ApiError, CredentialsError, EmrError, RequestNotSentError, ResponseError
from emrops.emr.http import DEFAULT_MAX_CONNECTIONS, AiohttpTransport, HttpRequest, HttpResponse, Transport
from emrops.emr.models import (
    ClusterSummary,
    ComponentInstance,
    GetClusterRequest,
    GetClusterResponse,
    GetOperationRequest,
    GetOperationResponse,
    ListClustersRequest,
    ListClustersResponse,
    ListComponentInstancesRequest,
    ListComponentInstancesResponse,
    ListNodesRequest,
    ListNodesResponse,
    Node,
    RunApplicationActionRequest,
    RunApplicationActionResponse,
)
from emrops.emr.responses import read_response
from emrops.emr.wire import Clock, Nonce, build_request, format_date, random_nonce, utc_now

logger = logging.getLogger(__name__)

#: Overall deadline of one call (sending, waiting, reading), on top of the transport's timeouts.
DEFAULT_DEADLINE = 30.0
#: How long a call may wait for a free connection (the SDK's pool timeout).
DEFAULT_SLOT_TIMEOUT = 5.0
#: How long a credentials provider may take (an RRSA token exchange is an HTTP call of its own).
DEFAULT_CREDENTIALS_TIMEOUT = 15.0
DEFAULT_USER_AGENT = (
    f"emrops/{emrops.__version__} aiohttp/{aiohttp.__version__} Python/{platform.python_version()}"
)

Req = TypeVar("Req", ListNodesRequest, ListComponentInstancesRequest, ListClustersRequest)
Resp = TypeVar("Resp", bound=BaseModel)
Item = TypeVar("Item")


class _ApiRequest(Protocol):
    @property
    def region_id(self) -> str: ...

    def to_params(self) -> dict[str, Any]: ...


class EmrClient:
    """Async client for the EMR 2021-03-20 OpenAPI.

    ::

        async with EmrClient(network="vpc") as client:
            creds = StaticCredentials(key_id, key_secret)
            resp = await client.run_application_action(request, credentials=creds)

    **Parameters** (all keyword-only):

    - ``endpoint``: override for every region, ``host[:port]`` or ``scheme://host[:port]``
      (https by default; http only for loopback hosts such as the emulator).
    - ``network``: ``"public"`` or ``"vpc"`` endpoints when there is no override.
    - ``transport``: what sends the requests (default ``AiohttpTransport``: connect 5 s, read
      10 s); tests pass one that answers without a socket.
    - ``max_connections``: requests in flight at once (and the default transport's connections).
    - ``deadline``: overall seconds per call (None: only the transport's timeouts apply).
    - ``slot_timeout``: seconds a call may wait for a free connection before it fails unsent.
    - ``credentials_timeout``: seconds the credentials provider may take per call.
    - ``user_agent``: the ``user-agent`` header.
    - ``clock`` / ``nonce``: sources of ``x-acs-date`` and ``x-acs-signature-nonce`` (tests fix them).
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        network: Network = "public",
        transport: Transport | None = None,
        deadline: float | None = DEFAULT_DEADLINE,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        slot_timeout: float = DEFAULT_SLOT_TIMEOUT,
        credentials_timeout: float = DEFAULT_CREDENTIALS_TIMEOUT,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Clock = utc_now,
        nonce: Nonce = random_nonce,
    ) -> None:
        if network not in ("public", "vpc"):
            raise ValueError(f"network must be 'public' or 'vpc', not {network!r}")
        # Parsed once, now: a bad override fails at construction, not on the first call.
        self._override = None if endpoint is None else parse_endpoint_override(endpoint)
        self._endpoint = endpoint
        self._network: Network = network
        self._deadline = deadline
        self._credentials_timeout = credentials_timeout
        self._user_agent = user_agent
        self._clock = clock
        self._nonce = nonce
        self._transport = transport or AiohttpTransport(max_connections=max_connections)
        # Requests never wait inside the transport's pool: a caller cancelled while queued there (a
        # deadline, a worker stopped) could leave a pool unable to hand out connections ever again
        # (seen with httpx and 1,000 concurrent workers). Waiting here instead is cancellation-safe,
        # and a request that found no slot provably was never sent.
        self._slots = asyncio.Semaphore(max_connections)
        self._slot_timeout = slot_timeout
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        await self._transport.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"EmrClient(endpoint={self._endpoint!r}, network={self._network!r})"

    # --- actions -------------------------------------------------------------------------------

    async def run_application_action(
        self, request: RunApplicationActionRequest, *, credentials: CredentialsProvider
    ) -> RunApplicationActionResponse:
        """Start an action on services; NOT idempotent (EMR has no client token)."""
        return await self._call(
            "RunApplicationAction", request, RunApplicationActionResponse, credentials, idempotent=False
        )

    async def get_operation(
        self, request: GetOperationRequest, *, credentials: CredentialsProvider
    ) -> GetOperationResponse:
        return await self._call("GetOperation", request, GetOperationResponse, credentials)

    async def list_clusters(
        self, request: ListClustersRequest, *, credentials: CredentialsProvider
    ) -> ListClustersResponse:
        return await self._call("ListClusters", request, ListClustersResponse, credentials)

    async def get_cluster(
        self, request: GetClusterRequest, *, credentials: CredentialsProvider
    ) -> GetClusterResponse:
        return await self._call("GetCluster", request, GetClusterResponse, credentials)

    async def list_nodes(
        self, request: ListNodesRequest, *, credentials: CredentialsProvider
    ) -> ListNodesResponse:
        return await self._call("ListNodes", request, ListNodesResponse, credentials)

    async def list_component_instances(
        self, request: ListComponentInstancesRequest, *, credentials: CredentialsProvider
    ) -> ListComponentInstancesResponse:
        return await self._call(
            "ListComponentInstances", request, ListComponentInstancesResponse, credentials
        )

    # --- pagination ----------------------------------------------------------------------------

    def iter_clusters(
        self, request: ListClustersRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[ClusterSummary]:
        """Every cluster matching ``request``, following ``NextToken`` page by page."""

        async def page(req: ListClustersRequest) -> tuple[Sequence[ClusterSummary], str | None]:
            resp = await self.list_clusters(req, credentials=credentials)
            return resp.clusters, resp.next_token

        return _paginate("ListClusters", request, page)

    def iter_nodes(
        self, request: ListNodesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[Node]:
        """Every node matching ``request``, following ``NextToken`` page by page."""

        async def page(req: ListNodesRequest) -> tuple[Sequence[Node], str | None]:
            resp = await self.list_nodes(req, credentials=credentials)
            return resp.nodes, resp.next_token

        return _paginate("ListNodes", request, page)

    def iter_component_instances(
        self, request: ListComponentInstancesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[ComponentInstance]:
        """Every component instance matching ``request``, following ``NextToken`` page by page."""

        async def page(req: ListComponentInstancesRequest) -> tuple[Sequence[ComponentInstance], str | None]:
            resp = await self.list_component_instances(req, credentials=credentials)
            return resp.component_instances, resp.next_token

        return _paginate("ListComponentInstances", request, page)

    # --- the one request path ------------------------------------------------------------------

    async def _call(
        self,
        action: str,
        request: _ApiRequest,
        model: type[Resp],
        credentials: CredentialsProvider,
        *,
        idempotent: bool = True,
    ) -> Resp:
        base_url = self._override or resolve_endpoint(request.region_id, network=self._network)
        host = base_url.raw_authority
        if self._closed:  # the transport refuses too, if it is closed during the waits below
            raise RequestNotSentError(f"{action}: the EMR client is closed")
        credential = await self._credential(credentials)
        try:
            async with asyncio.timeout(self._slot_timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise RequestNotSentError(
                f"{action}: no free connection to {host} within {self._slot_timeout:g}s"
            ) from None
        try:
            return await self._send(action, host, base_url, request, model, credential, idempotent)
        finally:
            self._slots.release()

    async def _send(
        self,
        action: str,
        host: str,
        base_url: URL,
        request: _ApiRequest,
        model: type[Resp],
        credential: Credential,
        idempotent: bool,
    ) -> Resp:
        # Signed only now, after any wait for a slot, so x-acs-date is fresh.
        http_request = build_request(
            action=action,
            params=request.to_params(),
            base_url=base_url,
            credential=credential,
            user_agent=self._user_agent,
            date=format_date(self._clock()),
            nonce=self._nonce(),
            idempotent=idempotent,
        )
        started = time.monotonic()
        try:
            response = await translated(self._within_deadline(http_request), action=action, host=host)
            result = read_response(response, model, action=action)
        except ApiError as exc:
            logger.debug(
                "EMR %s to %s: HTTP %d, code %s, request id %s, %.3fs",
                action,
                host,
                exc.http_status,
                exc.code,
                exc.request_id,
                time.monotonic() - started,
            )
            raise
        except EmrError as exc:
            logger.debug(
                "EMR %s to %s failed after %.3fs: %s",
                action,
                host,
                time.monotonic() - started,
                type(exc).__name__,
            )
            raise
        logger.debug(
            "EMR %s to %s: HTTP %d, request id %s, %.3fs",
            action,
            host,
            response.status_code,
            getattr(result, "request_id", ""),
            time.monotonic() - started,
        )
        return result

    async def _within_deadline(self, request: HttpRequest) -> HttpResponse:
        async with asyncio.timeout(self._deadline):
            return await self._transport.send(request)

    async def _credential(self, provider: CredentialsProvider) -> Credential:
        try:
            async with asyncio.timeout(self._credentials_timeout):
                return await provider.get()
        except TimeoutError:
            raise CredentialsError(
                f"the credentials provider {type(provider).__name__} did not answer within "
                f"{self._credentials_timeout:g}s"
            ) from None


async def _paginate(
    action: str,
    request: Req,
    fetch: Callable[[Req], Awaitable[tuple[Sequence[Item], str | None]]],
) -> AsyncIterator[Item]:
    token = request.next_token
    seen: set[str] = set()
    while True:
        items, token = await fetch(request.model_copy(update={"next_token": token}))
        for item in items:
            yield item
        if not token:
            return
        if token in seen:
            # A server that hands back a token it already gave would make us loop forever.
            raise ResponseError(f"{action}: NextToken {token!r} repeated; pagination stopped")
        seen.add(token)
