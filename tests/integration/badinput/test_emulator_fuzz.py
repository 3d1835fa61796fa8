"""Fuzzing the emulator with whole requests: it answers every one with an EMR error, never a 500.

The emulator is run in this process (``EmulatorServer`` on a loopback port, in a background
thread with its own event loop) so that its log records can be inspected: an unexpected exception
would be logged by its error middleware before it answered ``InternalError``. Hypothesis builds:

- structured requests: any method and path, query parameters mixing the real API names with
  random ones and random values, random ``x-acs-*`` headers, random bodies and content types;
- correctly signed requests (the demo key) whose parameters are garbage, so parsing beyond the
  signature check is reached, including nested ``ComponentInstanceSelector`` lists;
- raw bytes on the socket: malformed request lines, headers and percent-escapes.

Nothing is injected as a fault, so a 500 (InternalError) can only be a bug.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from yarl import URL

from emrops.emr.credentials import Credential
from emrops.emr.wire import build_request, random_nonce
from emrops.emulator.server import EmulatorServer
from emrops.emulator.settings import EmulatorSettings
from harness.emulator import as_httpx

pytestmark = pytest.mark.integration

ACTIONS = [
    "RunApplicationAction",
    "GetOperation",
    "ListClusters",
    "GetCluster",
    "ListNodes",
    "ListComponentInstances",
    "DeleteCluster",
    "",
]
KNOWN_PARAMS = [
    "RegionId",
    "ClusterId",
    "ActionName",
    "OperationId",
    "Description",
    "BatchSize",
    "Interval",
    "RollingExecute",
    "ExecuteStrategy",
    "MaxResults",
    "NextToken",
    "NodeIds.1",
    "NodeNames.1",
    "ApplicationNames.1",
    "ComponentNames.1",
    "ComponentStates.1",
    "NodeStates.1",
    "ComponentInstanceSelector.RunActionScope",
    "ComponentInstanceSelector.ActionScope",
    "ComponentInstanceSelector.ApplicationName",
    "ComponentInstanceSelector.Components.1.ApplicationName",
    "ComponentInstanceSelector.Components.1.ComponentName",
    "ComponentInstanceSelector.Components.2.ComponentName",
    "ComponentInstanceSelector.Components.0.ComponentName",
    "ComponentInstanceSelector.Components.99999999999999999999.ComponentName",
    "ComponentInstanceSelector.ComponentInstances.1.ApplicationName",
    "ComponentInstanceSelector.ComponentInstances.1.ComponentName",
    "ComponentInstanceSelector.ComponentInstances.1.NodeId",
    "ComponentInstanceSelector.ComponentInstances.3.NodeId",
    "ComponentInstanceSelector",
    "ComponentInstanceSelector.Components",
    "ComponentInstanceSelector.Components.1",
    "Tags.1.Key",
    "Tags.1.Value",
    "A..B",
    ".",
    "..1",
    "1",
]
GOOD_VALUES = [
    "cn-hangzhou",
    "c-8a3f2e1d9b7c6a50",
    "restart",
    "start",
    "stop",
    "config",
    "COMPONENT",
    "COMPONENT_INSTANCE",
    "APPLICATION",
    "YARN",
    "NodeManager",
    "HDFS",
    "DataNode",
    "i-bp1emrdemo000core1",
    "True",
    "false",
    "TRUE",
    "FAILED_BLOCK",
    "1",
    "0",
    "-1",
    "100",
    "101",
    "9" * 40,
    "1e3",
    " 7 ",
    "",
    "null",
    "[]",
    "{}",
    "op-0000",
]
HEADER_NAMES = [
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-security-token",
    "x-acs-accesskey-id",
    "authorization",
    "content-type",
    "accept",
    "x-acs-credentials-provider",
    "content-encoding",
]
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "application/octet-stream",
    "text/xml;charset=utf-8",
    "multipart/form-data; boundary=x",
    "",
]

header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
param_value = st.one_of(st.sampled_from(GOOD_VALUES), st.text(max_size=60))
param_name = st.one_of(st.sampled_from(KNOWN_PARAMS), st.text(min_size=1, max_size=30))
params_strategy = st.dictionaries(param_name, param_value, max_size=12)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ThreadedEmulator:
    """An in-process emulator on a loopback port, served by a loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EmulatorServer(EmulatorSettings(time_scale=0.01))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedEmulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def emulator_errors() -> Iterator[tuple[ThreadedEmulator, httpx.Client, _Errors]]:
    handler = _Errors()
    logger = logging.getLogger("emrops.emulator")
    logger.addHandler(handler)
    with ThreadedEmulator() as emu, httpx.Client(base_url=emu.url, timeout=30) as client:
        yield emu, client, handler
    logger.removeHandler(handler)


def _check(response: httpx.Response, errors: _Errors) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code == 503, response.text
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    if response.status_code >= 400:
        body = json.loads(text)
        assert isinstance(body, dict) and body.get("Code") and body.get("RequestId"), body
    assert not errors.records, [r.getMessage() for r in errors.records]


def _signed(emu_url: str, action: str, params: dict[str, Any]) -> httpx.Request:
    return as_httpx(
        build_request(
            action=action,
            params=params,
            base_url=URL(emu_url + "/"),
            credential=Credential("emrops-demo", "emrops-demo-secret"),
            user_agent="emrops-fuzz",
            date=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            nonce=random_nonce(),
        )
    )


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(
        [
            "/",
            "//",
            "/x",
            "/_emulator/calls",
            "/_emulator/faults",
            "/_emulator/nodes",
            "/_emulator/reset-no",
            "/%00",
            "/?",
        ]
    ),
    params=params_strategy,
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_text, max_size=8),
    content_type=st.sampled_from(CONTENT_TYPES),
    body=st.one_of(st.binary(max_size=300), st.text(max_size=200).map(str.encode)),
)
def test_unsigned_or_mis_signed_requests(
    emulator_errors: tuple[ThreadedEmulator, httpx.Client, _Errors],
    method: str,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
    content_type: str,
    body: bytes,
) -> None:
    _, client, errors = emulator_errors
    errors.records.clear()
    if path == "/_emulator/reset-no" or (path.startswith("/_emulator/") and method == "DELETE"):
        path = (
            "/_emulator/state"  # a reset or fault wipe between examples would change nothing, but keep state
        )
    all_headers = {k: v for k, v in headers.items() if v == v.strip()}
    if content_type:
        all_headers["content-type"] = content_type
    try:
        response = client.request(
            method, path, params=params, headers=all_headers, content=body if method != "GET" else None
        )
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        reject()  # the client itself refuses to send this request
    _check(response, errors)


@SETTINGS
@given(action=st.sampled_from(ACTIONS), params=params_strategy)
def test_correctly_signed_requests_with_garbage_parameters(
    emulator_errors: tuple[ThreadedEmulator, httpx.Client, _Errors], action: str, params: dict[str, str]
) -> None:
    emu, client, errors = emulator_errors
    errors.records.clear()
    request = _signed(emu.url, action or "RunApplicationAction", params)
    if not action:
        del request.headers["x-acs-action"]  # unsigned now: must be refused cleanly, not crash
    response = client.send(request)
    _check(response, errors)
    if action and response.status_code == 200:
        assert json.loads(response.text).get("RequestId")


@SETTINGS
@given(
    selector=st.recursive(
        st.one_of(st.sampled_from(GOOD_VALUES), st.text(max_size=20)),
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(
                st.sampled_from(
                    [
                        "RunActionScope",
                        "ApplicationName",
                        "Components",
                        "ComponentInstances",
                        "ComponentName",
                        "NodeId",
                        "ActionScope",
                    ]
                ),
                children,
                max_size=5,
            ),
        ),
        max_leaves=15,
    ),
    action_name=st.sampled_from(GOOD_VALUES),
    rolling=st.sampled_from(["True", "False", "maybe", "", "1"]),
    batch=st.sampled_from(["1", "0", "-5", "x", "99999999999999999999999", ""]),
)
def test_nested_selectors_of_any_shape(
    emulator_errors: tuple[ThreadedEmulator, httpx.Client, _Errors],
    selector: Any,
    action_name: str,
    rolling: str,
    batch: str,
) -> None:
    emu, client, errors = emulator_errors
    errors.records.clear()
    params = {
        "RegionId": "cn-hangzhou",
        "ClusterId": "c-8a3f2e1d9b7c6a50",
        "ActionName": action_name,
        "ComponentInstanceSelector": selector,
        "RollingExecute": rolling,
        "BatchSize": batch,
        "Description": "fuzz",
    }
    response = client.send(_signed(emu.url, "RunApplicationAction", params))
    _check(response, errors)


@SETTINGS
@given(
    request_line=st.one_of(
        st.sampled_from(
            [
                b"POST /?RegionId=%FF%FE HTTP/1.1",
                b"POST /?%%%%=%zz&&&=&a HTTP/1.1",
                b"GET /_emulator/calls?action=%C0%80 HTTP/1.1",
                b"POST /?ComponentInstanceSelector.Components.1.ApplicationName=%E4%B8%AD HTTP/1.1",
                b"POST / HTTP/1.0",
                b"BREW /pot HTTP/1.1",
                b"POST /" + b"a" * 9000 + b" HTTP/1.1",
            ]
        ),
        st.binary(min_size=1, max_size=120).filter(lambda b: b"\r" not in b and b"\n" not in b),
    ),
    header_lines=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    b"x-acs-action: RunApplicationAction",
                    b"x-acs-version: 2021-03-20",
                    b"authorization: ACS3-HMAC-SHA256 Credential=emrops-demo,SignedHeaders=,Signature=",
                    b"authorization: ACS3-HMAC-SHA256 ,,,",
                    b"x-acs-date: 9999-99-99T99:99:99Z",
                    b"content-length: 5",
                    b"content-length: -1",
                    b"transfer-encoding: chunked",
                    b"content-type: application/x-www-form-urlencoded",
                    b": empty-name",
                ]
            ),
            st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b),
        ),
        max_size=6,
    ),
    body=st.binary(max_size=100),
)
# A body shorter than its Content-Length, then end of input: the client gave up mid-request.
@example(request_line=b"POST / HTTP/1.1", header_lines=[b"content-length: 5"], body=b"ab")
def test_raw_bytes_on_the_socket(
    emulator_errors: tuple[ThreadedEmulator, httpx.Client, _Errors],
    request_line: bytes,
    header_lines: list[bytes],
    body: bytes,
) -> None:
    emu, _, errors = emulator_errors
    errors.records.clear()
    host, port = emu.server.host, emu.server.port
    raw = request_line + b"\r\n" + f"host: {host}:{port}\r\n".encode()
    raw += b"".join(line + b"\r\n" for line in header_lines) + b"connection: close\r\n\r\n" + body
    with socket.create_connection((host, port), timeout=10) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return  # the server closed on us while we were still sending: no answer, no crash
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
    answer = b"".join(chunks)
    if answer:
        status_line = answer.split(b"\r\n", 1)[0]
        parts = status_line.split(b" ")
        assert len(parts) >= 2 and parts[1] != b"500", answer[:500]
        assert b"Traceback" not in answer
    assert not errors.records, [r.getMessage() for r in errors.records]
