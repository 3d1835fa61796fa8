"""Hypothesis: no request, signed or not, makes the emulator answer 500 or leak a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from emulator_api import Api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrops.acs.codes import TABLE
from emrops.emulator import EmulatorSettings, create_app
from emrops.emulator.actions import ACTIONS as EMULATED_ACTIONS

#: Every action the emulator serves, an unknown one and none.
ACTIONS = [*EMULATED_ACTIONS, "Nope", ""]
NAMES = [
    "RegionId",
    "ClusterId",
    "ActionName",
    "ComponentInstanceSelector.RunActionScope",
    "ComponentInstanceSelector.ApplicationName",
    "ComponentInstanceSelector.Components.1.ComponentName",
    "ComponentInstanceSelector.ComponentInstances.1.NodeId",
    "ComponentInstanceSelector.ComponentInstances.x.NodeId",
    "ComponentInstanceSelector",
    "RollingExecute",
    "Interval",
    "BatchSize",
    "ExecuteStrategy",
    "MaxResults",
    "NextToken",
    "OperationId",
    "NodeIds.1",
    "NodeIds",
    "A..B",
    ".",
    "Action",
    "Version",
    "Signature",
]
VALUES = st.one_of(
    st.sampled_from(
        [
            "cn-hangzhou",
            "c-8a3f2e1d9b7c6a50",
            "restart",
            "APPLICATION",
            "HDFS",
            "True",
            "-1",
            "0",
            "101",
            "99999999999999999999999",
            "",
            " ",
            "%",
            "FAILED_BLOCK",
            "op-0",
        ]
    ),
    st.text(max_size=30),
)
PARAMS = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=20)), VALUES, max_size=8
)
HEADER_NAMES = [
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "authorization",
    "content-type",
    "x-acs-security-token",
    "x-acs-content-sha256",
]
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.fixture(scope="module")
def fuzz_api() -> Iterator[tuple[asyncio.AbstractEventLoop, Api]]:
    loop = asyncio.new_event_loop()
    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(EmulatorSettings(time_scale=0.0001))), loop=loop
    )
    loop.run_until_complete(client.start_server())
    yield loop, Api(client)
    loop.run_until_complete(client.close())
    loop.close()


def check(status: int, body: dict[str, Any]) -> None:
    assert status != 500, body
    if status >= 400:
        assert set(body) == {"RequestId", "HostId", "Code", "Message"}, body
        assert body["Code"] in TABLE
        assert "Traceback" not in body["Message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(ACTIONS), params=PARAMS)
def test_signed_random_parameters(
    fuzz_api: tuple[asyncio.AbstractEventLoop, Api], action: str, params: dict[str, str]
) -> None:
    loop, api = fuzz_api
    reply = loop.run_until_complete(api.call(action or None, params))
    check(reply.status, reply.body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw_query=st.one_of(st.text(max_size=80).map(lambda s: quote(s, safe="=&%+.")), PARAMS.map(urlencode)),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), HEADER_VALUE, max_size=6),
    body=st.binary(max_size=64),
    method=st.sampled_from(["POST", "GET"]),
)
def test_unsigned_random_requests(
    fuzz_api: tuple[asyncio.AbstractEventLoop, Api],
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    method: str,
) -> None:
    loop, api = fuzz_api
    reply = loop.run_until_complete(api.send(method, raw_query, headers, body if method == "POST" else b""))
    check(reply.status, reply.body)
