"""Helpers for the emulator unit tests: an in-process emulator and requests signed by hand."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from emrops.acs.flatten import flatten
from emrops.acs.signing import EMPTY_SHA256, acs3_authorization, rpc_v1_signature
from emrops.emulator import EmulatorSettings, create_app
from emrops.emulator.app import STATE
from emrops.emulator.scenario import parse_scenario
from emrops.emulator.state import EmulatorState
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, REGION

VERSION = "2021-03-20"


def utc(offset: float = 0.0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def code(self) -> str:
        return str(self.body.get("Code", "OK"))


class Api:
    """Signs and sends EMR calls to an in-process emulator."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    @property
    def state(self) -> EmulatorState:
        return self.client.app[STATE]  # type: ignore[index]

    @property
    def host(self) -> str:
        return f"{self.client.host}:{self.client.port}"

    async def send(self, method: str, query: str, headers: dict[str, str], body: bytes = b"") -> Reply:
        url = URL(f"/?{query}" if query else "/", encoded=True)
        async with self.client.request(method, url, headers=headers, data=body or None) as resp:
            payload = await resp.json(content_type=None)
            return Reply(resp.status, payload, resp.headers)

    async def call(
        self,
        action: str | None,
        params: Mapping[str, Any] | None = None,
        *,
        key: str = ACCESS_KEY_ID,
        secret: str = ACCESS_KEY_SECRET,
        token: str | None = None,
        method: str = "POST",
        date: str | None = None,
        nonce: str | None = None,
        version: str | None = VERSION,
        extra_headers: Mapping[str, str] | None = None,
        unsigned_headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Reply:
        """An ACS3-HMAC-SHA256 signed call; nested params are flattened like the SDK does."""
        flat = flatten(params or {})
        headers = {
            "host": self.host,
            "x-acs-date": date or utc(),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "x-acs-content-sha256": EMPTY_SHA256,
            "accept": "application/json",
        }
        if action is not None:
            headers["x-acs-action"] = action
        if version is not None:
            headers["x-acs-version"] = version
        if token is not None:
            headers["x-acs-security-token"] = token
            headers["x-acs-accesskey-id"] = key
        headers.update(extra_headers or {})
        body = urlencode(form).encode() if form else b""
        if form:
            headers["content-type"] = "application/x-www-form-urlencoded"
        headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
        headers["authorization"] = acs3_authorization(
            access_key_id=key,
            access_key_secret=secret,
            method=method,
            path="/",
            query=list(flat.items()),
            headers=headers,
            payload_hash=headers["x-acs-content-sha256"],
        )
        headers.update(unsigned_headers or {})
        return await self.send(method, urlencode(flat), headers, body)

    async def call_v1(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        key: str = ACCESS_KEY_ID,
        secret: str = ACCESS_KEY_SECRET,
        token: str | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
        in_form: bool = False,
    ) -> Reply:
        """A legacy RPC call signed with HMAC-SHA1 (``Signature`` parameter)."""
        flat = {
            "Action": action,
            "Format": "json",
            "Version": VERSION,
            "Timestamp": timestamp or utc(),
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "AccessKeyId": key,
            **flatten(params or {}),
        }
        if token is not None:
            flat["SecurityToken"] = token
        flat["Signature"] = rpc_v1_signature(secret, "POST", list(flat.items()))
        headers = {"host": self.host}
        if in_form:
            headers["content-type"] = "application/x-www-form-urlencoded"
            return await self.send("POST", "", headers, urlencode(flat).encode())
        return await self.send("POST", urlencode(flat), headers)


ApiFactory = Callable[..., "Api"]


@pytest.fixture
async def api_factory() -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(scenario: dict[str, Any] | None = None, time_scale: float = 0.001) -> Api:
        settings = EmulatorSettings(scenario=parse_scenario(scenario or {}), time_scale=time_scale)
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        clients.append(client)
        return Api(client)

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def api(api_factory: Callable[..., Any]) -> Api:
    result: Api = await api_factory()
    return result


def restart_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "RegionId": REGION,
        "ClusterId": CLUSTER_ID,
        "ActionName": "restart",
        "ComponentInstanceSelector": {"RunActionScope": "APPLICATION", "ApplicationName": "HDFS"},
    }
    params.update(overrides)
    return params
