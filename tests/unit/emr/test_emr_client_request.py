"""What the client puts on the wire, checked on requests captured by a recording transport."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from emr_helpers import FIXED_NONCE, SDK_UA, TOKEN, Recorder, ok, params_of, query_of

from emrops.acs.signing import EMPTY_SHA256, acs3_signature, acs3_string_to_sign, parse_acs3_authorization
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.http import AiohttpTransport, HttpRequest
from emrops.emr.models import (
    ActionName,
    ComponentInstanceSelector,
    ComponentRef,
    GetOperationRequest,
    RunActionScope,
    RunApplicationActionRequest,
)

GET_OP = GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-1", operation_id="op-1")
OPERATION = {"RequestId": "r-1", "Operation": {"OperationId": "op-1", "OperationState": "IN_PROGRESS"}}


def _verify(request: HttpRequest, secret: str) -> list[str]:
    """Recompute the signature from what was sent, as a server does; returns the signed header names."""
    parsed = parse_acs3_authorization(request.headers["authorization"])
    assert parsed is not None
    _, _, names, signature = parsed
    query = parse_qsl(query_of(request), keep_blank_values=True)
    to_sign = acs3_string_to_sign(
        method=request.method,
        path=request.url.path,
        query=query,
        headers=dict(request.headers),
        signed_headers=names,
        payload_hash=EMPTY_SHA256,
    )
    assert acs3_signature(secret, to_sign) == signature
    return names


async def test_get_operation_request_shape(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.reply(ok(OPERATION))
    response = await client.get_operation(GET_OP, credentials=creds)
    assert response.operation.operation_id == "op-1"

    sent = recorder.last
    assert sent.method == "POST"
    assert sent.url.scheme == "https"
    assert sent.url.host == "emr.aliyuncs.com"
    assert sent.url.path == "/"
    assert params_of(sent) == {
        "RegionId": "cn-hangzhou",
        "ClusterId": "c-1",
        "OperationId": "op-1",
    }
    assert sent.headers["host"] == "emr.aliyuncs.com"
    assert sent.headers["x-acs-version"] == "2021-03-20"
    assert sent.headers["x-acs-action"] == "GetOperation"
    assert sent.headers["x-acs-date"] == "2024-01-01T00:00:00Z"
    assert sent.headers["x-acs-signature-nonce"] == FIXED_NONCE
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["x-acs-content-sha256"] == EMPTY_SHA256
    assert sent.headers["x-acs-credentials-provider"] == "static_ak"
    assert sent.headers["user-agent"] == SDK_UA
    assert "x-acs-security-token" not in sent.headers

    names = _verify(sent, creds._credential.access_key_secret)
    assert names == [
        "accept",
        "host",
        "user-agent",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-credentials-provider",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]


async def test_sts_adds_signed_token_headers(
    client: EmrClient, recorder: Recorder, sts_creds: StaticCredentials
) -> None:
    recorder.reply(ok(OPERATION))
    await client.get_operation(GET_OP, credentials=sts_creds)
    sent = recorder.last
    assert sent.headers["x-acs-credentials-provider"] == "static_sts"
    assert sent.headers["x-acs-accesskey-id"] == "testAccessKeyId"
    assert sent.headers["x-acs-security-token"] == TOKEN
    names = _verify(sent, sts_creds._credential.access_key_secret)
    assert {"x-acs-accesskey-id", "x-acs-security-token"} <= set(names)


async def test_run_application_action_query_is_urlencoded_like_the_sdk(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.reply(ok({"RequestId": "r-2", "OperationId": "op-2", "AbnInstances": []}))
    request = RunApplicationActionRequest(
        region_id="cn-hangzhou",
        cluster_id="c-1",
        action_name=ActionName.RESTART,
        component_instance_selector=ComponentInstanceSelector(
            run_action_scope=RunActionScope.COMPONENT,
            application_name="YARN",
            components=[ComponentRef(application_name="YARN", component_name="NodeManager")],
        ),
        rolling_execute=False,
        description="hello world *~/+&=中",
    )
    response = await client.run_application_action(request, credentials=creds)
    assert response.operation_id == "op-2"
    raw = query_of(recorder.last)
    segments = raw.split("&")
    assert "Description=hello+world+%2A~%2F%2B%26%3D%E4%B8%AD" in segments
    assert "RollingExecute=False" in segments
    assert "ComponentInstanceSelector.Components.1.ComponentName=NodeManager" in segments
    _verify(recorder.last, creds._credential.access_key_secret)


async def _get_operations(
    recorder: Recorder, creds: StaticCredentials, *requests: GetOperationRequest, **client_options: Any
) -> list[HttpRequest]:
    """What a client built with ``client_options`` sends for ``GetOperation`` ``requests``."""
    recorder.default = ok(OPERATION)
    async with EmrClient(transport=recorder, **client_options) as emr:
        for request in requests:
            await emr.get_operation(request, credentials=creds)
    return recorder.requests


async def test_nonce_is_fresh_for_every_request(recorder: Recorder, creds: StaticCredentials) -> None:
    sent = await _get_operations(recorder, creds, GET_OP, GET_OP)
    nonces = [r.headers["x-acs-signature-nonce"] for r in sent]
    assert len(set(nonces)) == 2
    assert all(len(n) == 32 and int(n, 16) >= 0 for n in nonces)
    date = datetime.strptime(sent[-1].headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - date).total_seconds()) < 3600


async def test_endpoint_resolved_per_request_from_region(
    recorder: Recorder, creds: StaticCredentials
) -> None:
    elsewhere = GET_OP.model_copy(update={"region_id": "eu-central-1"})
    sent = await _get_operations(recorder, creds, GET_OP, elsewhere, network="vpc")
    assert [r.url.host for r in sent] == [
        "emr-vpc.cn-hangzhou.aliyuncs.com",
        "emr-vpc.eu-central-1.aliyuncs.com",
    ]
    assert sent[1].headers["host"] == "emr-vpc.eu-central-1.aliyuncs.com"


async def test_endpoint_override_with_port_is_the_signed_host(
    recorder: Recorder, creds: StaticCredentials
) -> None:
    (sent,) = await _get_operations(recorder, creds, GET_OP, endpoint="http://127.0.0.1:8090")
    assert str(sent.url).startswith("http://127.0.0.1:8090/?")
    assert sent.headers["host"] == "127.0.0.1:8090"
    _verify(sent, creds._credential.access_key_secret)


@pytest.mark.parametrize(
    "endpoint", ["http://emr.aliyuncs.com", "http://10.0.0.1:8090", "ftp://127.0.0.1", "https://h/path"]
)
def test_unusable_endpoint_refused_at_construction(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        EmrClient(endpoint=endpoint)


def test_network_must_be_known() -> None:
    with pytest.raises(ValueError, match="network"):
        EmrClient(network="internal")  # type: ignore[arg-type]


async def test_defaults_are_the_sdk_timeouts() -> None:
    transport = AiohttpTransport()
    timeout = transport._timeout
    assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (5.0, 10.0, None)
    assert transport.max_connections == 20


async def test_tls_verification_is_on_for_https() -> None:
    import ssl

    context = AiohttpTransport().ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
