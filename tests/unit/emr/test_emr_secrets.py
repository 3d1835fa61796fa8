"""Secrets and STS tokens never show in reprs, error text or DEBUG logs."""

from __future__ import annotations

import asyncio
import logging
import traceback

import aiohttp
import pytest
from emr_helpers import CONNECTION_KEY, REQUEST_INFO, SECRET, TOKEN, Recorder, ok

from emrops.emr.client import EmrClient
from emrops.emr.credentials import Credential, CredentialsProvider, DefaultChainCredentials, StaticCredentials
from emrops.emr.errors import CredentialsError, EmrError
from emrops.emr.http import HttpResponse
from emrops.emr.models import GetOperationRequest

GET_OP = GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-1", operation_id="op-1")
OPERATION = {"RequestId": "r-1", "Operation": {"OperationId": "op-1", "OperationState": "COMPLETED"}}


def _clean(text: str) -> None:
    assert SECRET not in text
    assert TOKEN not in text


def test_reprs(sts_creds: StaticCredentials) -> None:
    credential = Credential("AKID", SECRET, TOKEN, "static_sts")
    for obj in (credential, sts_creds, DefaultChainCredentials(), EmrClient(endpoint="http://127.0.0.1:1")):
        _clean(repr(obj))
        _clean(str(obj))
    assert "AKID" in repr(credential)
    assert "testAccessKeyId" in repr(sts_creds)


def test_static_credentials_headers(sts_creds: StaticCredentials) -> None:
    assert isinstance(sts_creds, CredentialsProvider)
    assert sts_creds.access_key_id == "testAccessKeyId"


@pytest.mark.parametrize(("key_id", "secret"), [("", SECRET), ("AKID", "")])
def test_empty_static_credentials_refused(key_id: str, secret: str) -> None:
    with pytest.raises(CredentialsError) as info:
        StaticCredentials(key_id, secret)
    _clean(str(info.value))


@pytest.mark.parametrize(
    "answer",
    [
        ok(OPERATION),
        ok({"RequestId": "r-2", "Code": "NotAuthorized", "Message": "denied"}, status=400),
        ok({"Code": "Throttling", "Message": "slow"}, status=400, **{"x-acs-retry-after": "100"}),
        HttpResponse.of(500, b"<html>oops</html>"),
        HttpResponse.of(200, b"garbage"),
        aiohttp.ClientConnectorError(CONNECTION_KEY, OSError(111, "Connection refused")),
        aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
        aiohttp.ClientResponseError(REQUEST_INFO, (), status=400, message="Invalid HTTP header"),
        aiohttp.ClientHttpProxyError(REQUEST_INFO, (), status=407, message="Proxy Authentication Required"),
    ],
    ids=[
        "ok",
        "api-error",
        "throttled",
        "html-500",
        "garbage-200",
        "connect-error",
        "read-timeout",
        "bad-answer",
        "proxy-refused",
    ],
)
async def test_debug_logs_and_errors_hold_no_secret(
    answer: HttpResponse | Exception,
    client: EmrClient,
    recorder: Recorder,
    sts_creds: StaticCredentials,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder.reply(answer)
    caplog.set_level(logging.DEBUG)
    try:
        await client.get_operation(GET_OP, credentials=sts_creds)
    except EmrError as exc:
        _clean(str(exc))
        _clean(repr(exc))
        # As a log with exc_info prints it: the whole chain, with every exception's text.
        _clean("".join(traceback.format_exception(exc)))
    records = [r for r in caplog.records if r.name.startswith("emrops")]
    assert records, "the client logs every call at DEBUG"
    text = "\n".join(r.getMessage() for r in caplog.records)
    _clean(text)
    assert "GetOperation" in text and "emr.aliyuncs.com" in text
    assert "ACS3-HMAC-SHA256" not in text  # the Authorization header is never logged
    # The token went on the wire (it must), nowhere else.
    assert recorder.last.headers["x-acs-security-token"] == TOKEN


async def test_success_log_names_status_and_request_id(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.reply(ok(OPERATION))
    caplog.set_level(logging.DEBUG, logger="emrops.emr.client")
    await client.get_operation(GET_OP, credentials=creds)
    (record,) = [r for r in caplog.records if r.name == "emrops.emr.client"]
    message = record.getMessage()
    assert "HTTP 200" in message and "r-1" in message and "emr.aliyuncs.com" in message


class _Slow:
    async def get(self) -> Credential:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


async def test_credentials_provider_timeout(recorder: Recorder) -> None:
    async with EmrClient(transport=recorder, credentials_timeout=0.05) as emr:
        with pytest.raises(CredentialsError, match="_Slow"):
            await emr.get_operation(GET_OP, credentials=_Slow())
    assert recorder.requests == []
