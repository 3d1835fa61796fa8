"""The aiohttp transport over real sockets: what it reuses, what it adds, what it reads of the
environment, and that a closed client sends nothing.

The server is a raw HTTP/1.1 loop on 127.0.0.1, so a test can answer out of turn, see every
byte that arrived and on which connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from emr_helpers import SECRET, TOKEN
from yarl import URL

from emrops.acs.signing import parse_acs3_authorization
from emrops.emr.client import EmrClient
from emrops.emr.credentials import Credential, StaticCredentials
from emrops.emr.errors import ApiError, RequestNotSentError
from emrops.emr.http import AiohttpTransport, HttpRequest
from emrops.emr.models import (
    ActionName,
    ComponentInstanceSelector,
    GetOperationRequest,
    RunActionScope,
    RunApplicationActionRequest,
)

CREDS = StaticCredentials("AKID", SECRET, security_token=TOKEN)
GET_OP = GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-1", operation_id="op-1")
RUN = RunApplicationActionRequest(
    region_id="cn-hangzhou",
    cluster_id="c-1",
    action_name=ActionName.RESTART,
    component_instance_selector=ComponentInstanceSelector(
        run_action_scope=RunActionScope.APPLICATION, application_name="YARN"
    ),
)
OPERATION = {"RequestId": "r-get", "Operation": {"OperationId": "op-1", "OperationState": "COMPLETED"}}


def answer(status: int, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


class Arrival:
    def __init__(self, head: bytes, peer: object) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        self.peer = peer


OnRequest = Callable[[int, Arrival, asyncio.StreamWriter], Awaitable[None]]


async def answer_operation(n: int, arrival: Arrival, writer: asyncio.StreamWriter) -> None:
    """Answers every request with a GetOperation body."""
    writer.write(answer(200, OPERATION))
    await writer.drain()


class RawServer:
    """Reads each request (head and Content-Length body) and lets ``on_request`` answer it."""

    def __init__(self, on_request: OnRequest) -> None:
        self.on_request = on_request
        self.arrivals: list[Arrival] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrival = Arrival(head, writer.get_extra_info("peername"))
                await reader.readexactly(int(arrival.headers.get("content-length", "0")))
                self.arrivals.append(arrival)
                await self.on_request(len(self.arrivals), arrival, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[OnRequest], Awaitable[RawServer]]]:
    servers: list[asyncio.Server] = []

    async def start(on_request: OnRequest) -> RawServer:
        raw = RawServer(on_request)
        server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(server)
        raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return raw

    yield start
    for server in servers:
        server.close()


async def test_a_submission_never_reads_an_answer_left_on_a_kept_alive_connection(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]],
) -> None:
    """A peer that writes on an idle kept-alive connection (a stale 429 here) must not have
    that read as RunApplicationAction's answer: EMR ran it, and a RETRY would run it twice."""

    async def on_request(n: int, arrival: Arrival, writer: asyncio.StreamWriter) -> None:
        if arrival.headers["x-acs-action"] == "RunApplicationAction":
            writer.write(answer(200, {"RequestId": "r-run", "OperationId": "op-REAL"}))
        else:
            writer.write(answer(200, OPERATION))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(answer(429, {"RequestId": "stale", "Code": "Throttling.User", "Message": "stale"}))
        await writer.drain()

    server = await raw_server(on_request)
    async with EmrClient(endpoint=server.url) as client:
        await client.get_operation(GET_OP, credentials=CREDS)
        await asyncio.sleep(0.2)  # the stale answer is in the kept-alive connection's buffer now
        response = await client.run_application_action(RUN, credentials=CREDS)
    assert response.operation_id == "op-REAL"
    get, run = server.arrivals
    assert get.peer != run.peer, "the submission went over a connection of its own"
    assert run.headers.get("connection") == "close"


async def test_only_signed_headers_and_http_framing_reach_the_server(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]],
) -> None:
    """ACS3 signs Content-Type whenever it is present: aiohttp's automatic one must not go out."""

    server = await raw_server(answer_operation)
    async with EmrClient(endpoint=server.url) as client:
        await client.get_operation(GET_OP, credentials=CREDS)
    (arrival,) = server.arrivals
    parsed = parse_acs3_authorization(arrival.headers["authorization"])
    assert parsed is not None
    signed = set(parsed[2])
    assert set(arrival.headers) - signed == {"authorization", "content-length"}
    assert arrival.headers["content-length"] == "0"


async def test_a_close_during_a_call_sends_nothing(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]],
) -> None:
    """The client is closed while a call waits (for its credentials here): it must not open a
    new session afterwards and send the request on it."""

    release = asyncio.Event()

    class Slow:
        async def get(self) -> Credential:
            await release.wait()
            return await CREDS.get()

    server = await raw_server(answer_operation)
    client = EmrClient(endpoint=server.url)
    call = asyncio.create_task(client.run_application_action(RUN, credentials=Slow()))
    await asyncio.sleep(0.05)
    await client.aclose()
    release.set()
    with pytest.raises(RequestNotSentError, match="closed"):
        await call
    assert server.arrivals == []


async def test_netrc_is_not_read(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp with trust_env reads ~/.netrc at every request and adds an Authorization of its
    own for a matching host (or fails the call): an unrelated file must change nothing."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password not-for-emr\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    server = await raw_server(answer_operation)
    async with EmrClient(endpoint=server.url) as client:
        await client.get_operation(GET_OP, credentials=CREDS)
    (arrival,) = server.arrivals
    assert arrival.headers["authorization"].startswith("ACS3-HMAC-SHA256 ")


async def test_a_proxy_from_the_environment_gets_its_credentials_in_a_header(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]],
) -> None:
    """The loopback "proxy" answers as EMR would; what matters is that the request went to it,
    in the absolute form a proxy is sent, with the proxy's credentials as Proxy-Authorization."""

    async def on_request(n: int, arrival: Arrival, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(404, {"RequestId": "r-proxy", "Code": "NotFound", "Message": "via the proxy"}))
        await writer.drain()

    proxy = await raw_server(on_request)
    transport = AiohttpTransport(proxies={"http": proxy.url.replace("http://", "http://user:pw%40x@")})
    endpoint = "http://127.0.0.1:9"  # never contacted: the proxy is
    async with EmrClient(endpoint=endpoint, transport=transport) as client:
        with pytest.raises(ApiError, match="via the proxy"):
            await client.get_operation(GET_OP, credentials=CREDS)
    (arrival,) = proxy.arrivals
    assert arrival.request_line.startswith("POST http://127.0.0.1:9/?")
    assert arrival.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:pw@x").decode()


async def test_a_proxy_that_refuses_the_tunnel_means_not_sent(
    raw_server: Callable[[OnRequest], Awaitable[RawServer]],
) -> None:
    """For https (every real endpoint) the proxy is asked for a tunnel first, with the proxy's
    credentials on the CONNECT; a refusal comes before any byte of the request: not sent."""

    async def on_request(n: int, arrival: Arrival, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()

    proxy = await raw_server(on_request)
    transport = AiohttpTransport(proxies={"https": proxy.url.replace("http://", "http://user:pw-9f@")})
    async with EmrClient(transport=transport) as client:  # emr.aliyuncs.com: only the proxy is contacted
        with pytest.raises(RequestNotSentError) as caught:
            await client.run_application_action(RUN, credentials=CREDS)
    (arrival,) = proxy.arrivals
    assert arrival.request_line == "CONNECT emr.aliyuncs.com:443 HTTP/1.1"
    assert arrival.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:pw-9f").decode()
    assert "x-acs-security-token" not in arrival.headers
    assert "pw-9f" not in str(caught.value)


@pytest.mark.parametrize(
    ("proxies", "url", "expected"),
    [
        ({}, "https://emr.aliyuncs.com/", None),
        ({"https": "http://p:3128"}, "https://emr.aliyuncs.com/", "http://p:3128"),
        ({"https": "https://p:3129"}, "https://emr.aliyuncs.com/", "https://p:3129"),  # an https proxy too
        ({"all": "http://p:3128"}, "https://emr.aliyuncs.com/", "http://p:3128"),
        ({"https": "p:3128"}, "https://emr.aliyuncs.com/", "http://p:3128"),
        ({"http": "http://p:3128"}, "https://emr.aliyuncs.com/", None),
        ({"https": "http://p:3128", "no": "aliyuncs.com"}, "https://emr.aliyuncs.com/", None),
        ({"https": "http://p:3128", "no": ".aliyuncs.com"}, "https://emr.aliyuncs.com/", None),
        ({"https": "http://p:3128", "no": "*"}, "https://emr.aliyuncs.com/", None),
        ({"https": "http://p:3128", "no": "liyuncs.com"}, "https://emr.aliyuncs.com/", "http://p:3128"),
        ({"http": "http://p:3128", "no": "localhost, 127.0.0.1"}, "http://127.0.0.1:8090/", None),
        ({"http": "http://p:3128", "no": "[::1]"}, "http://[::1]:8090/", None),
    ],
)
def test_the_proxy_for_a_url(proxies: dict[str, str], url: str, expected: str | None) -> None:
    proxy, headers = AiohttpTransport(proxies=proxies).proxy_for(URL(url))
    assert (str(proxy) if proxy else None) == expected
    assert headers is None


def test_a_submission_is_marked_not_idempotent() -> None:
    request = HttpRequest("POST", URL("https://emr.aliyuncs.com/"), {"x-acs-security-token": TOKEN})
    assert request.idempotent
    assert TOKEN not in repr(request), "a traceback rendered with its locals shows the request's repr"
