"""Our client over real sockets to a stdlib HTTP server on 127.0.0.1: bytes, reuse, refusals."""

from __future__ import annotations

import importlib.abc
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import pytest
from emr_helpers import FIXED_DATE, FIXED_NONCE

from emrops.acs.signing import EMPTY_SHA256, acs3_signature, acs3_string_to_sign, parse_acs3_authorization
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.errors import OutcomeUnknownError, RequestNotSentError
from emrops.emr.models import GetOperationRequest

GET_OP = GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-1 *~", operation_id="op-1")
SECRET = "wire-secret"


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    hang_up = False

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        type(self).seen.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
                "peer": self.client_address,
                "version": self.request_version,
            }
        )
        if type(self).hang_up:
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = json.dumps(
            {"RequestId": "r-wire", "Operation": {"OperationId": "op-1", "OperationState": "COMPLETED"}}
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    _Handler.hang_up = False
    _Handler.protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def test_signed_request_survives_the_wire_and_connections_are_reused(server: str) -> None:
    creds = StaticCredentials("AKID", SECRET)
    async with EmrClient(endpoint=server, clock=lambda: FIXED_DATE, nonce=lambda: FIXED_NONCE) as client:
        first = await client.get_operation(GET_OP, credentials=creds)
        await client.get_operation(GET_OP, credentials=creds)
    assert first.request_id == "r-wire"
    one, two = _Handler.seen
    assert one["peer"] == two["peer"], "the second call reused the first connection"
    assert one["body"] == b""
    assert one["headers"]["content-length"] == "0"
    path, _, query = one["path"].partition("?")
    assert path == "/"
    assert "ClusterId=c-1+%2A~" in query.split("&")
    headers = one["headers"]
    assert headers["host"] == server.removeprefix("http://")
    # Verify as a server would, from what actually arrived.
    parsed = parse_acs3_authorization(headers["authorization"])
    assert parsed is not None
    _, key_id, names, signature = parsed
    to_sign = acs3_string_to_sign(
        method="POST",
        path=path,
        query=parse_qsl(query, keep_blank_values=True),
        headers=headers,
        signed_headers=names,
        payload_hash=EMPTY_SHA256,
    )
    assert key_id == "AKID"
    assert acs3_signature(SECRET, to_sign) == signature


async def test_connection_dropped_after_sending_is_outcome_unknown(server: str) -> None:
    _Handler.hang_up = True
    async with EmrClient(endpoint=server) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.get_operation(GET_OP, credentials=StaticCredentials("AKID", SECRET))
    assert len(_Handler.seen) == 1, "the request did arrive: that is why the outcome is unknown"


async def test_connection_refused_is_request_not_sent() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with EmrClient(endpoint=f"http://127.0.0.1:{port}") as client:
        with pytest.raises(RequestNotSentError):
            await client.get_operation(GET_OP, credentials=StaticCredentials("AKID", SECRET))


async def test_a_request_on_a_reused_connection_that_drops_is_sent_once(server: str) -> None:
    """aiohttp sends a request again when a kept-alive connection drops, for idempotent methods:
    the EMR API is POST, so the second call must reach the server once, and be outcome unknown."""
    creds = StaticCredentials("AKID", SECRET)
    async with EmrClient(endpoint=server) as client:
        await client.get_operation(GET_OP, credentials=creds)
        _Handler.hang_up = True
        with pytest.raises(OutcomeUnknownError):
            await client.get_operation(GET_OP, credentials=creds)
    first, second = _Handler.seen
    assert first["peer"] == second["peer"], "the second call went over the kept-alive connection"


async def test_a_call_searches_for_no_module(server: str) -> None:
    """Once warm, a call imports nothing: a failed import is not cached, so a library that tries
    one per request (httpcore's ``import sniffio`` without sniffio installed) searches sys.path
    every time; that was 11% of the operator's CPU in a burst."""
    asked: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: object, target: object = None) -> None:
            asked.append(fullname)

    creds = StaticCredentials("AKID", SECRET)
    async with EmrClient(endpoint=server) as client:
        await client.get_operation(GET_OP, credentials=creds)
        sys.meta_path.insert(0, Recorder())
        try:
            for _ in range(3):
                await client.get_operation(GET_OP, credentials=creds)
        finally:
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, Recorder)]
    assert asked == []
