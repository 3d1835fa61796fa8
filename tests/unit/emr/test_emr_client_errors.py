"""Every way a call can fail, and the error type and fields each one produces."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from emr_helpers import Recorder, ok

from emrops.acs.codes import Classification
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.errors import ApiError, OutcomeUnknownError, RequestNotSentError, ResponseError
from emrops.emr.httpx_errors import NOT_SENT, translate
from emrops.emr.models import GetOperationRequest

GET_OP = GetOperationRequest(region_id="cn-hangzhou", cluster_id="c-1", operation_id="op-1")


async def _fail(client: EmrClient, creds: StaticCredentials) -> BaseException:
    with pytest.raises(Exception) as info:
        await client.get_operation(GET_OP, credentials=creds)
    return info.value


class TestApiErrors:
    async def test_fields_from_the_error_body(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(
            ok(
                {
                    "RequestId": "r-9",
                    "HostId": "emr.aliyuncs.com",
                    "Code": "ResourceNotFound",
                    "Message": "no c-1",
                },
                status=404,
            )
        )
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert (error.code, error.message, error.http_status, error.request_id) == (
            "ResourceNotFound",
            "no c-1",
            404,
            "r-9",
        )
        assert error.action == "GetOperation"
        assert error.retry_after is None
        assert error.classification is Classification.TERMINAL
        assert "ResourceNotFound" in str(error) and "r-9" in str(error)

    async def test_lower_case_keys(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(ok({"requestId": "r-8", "code": "InternalError", "message": "boom"}, status=500))
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert (error.code, error.message, error.request_id) == ("InternalError", "boom", "r-8")
        assert error.classification is Classification.AMBIGUOUS

    async def test_throttling_with_retry_after_in_seconds(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        body = {"RequestId": "r-7", "Code": "Throttling.User", "Message": "slow down"}
        recorder.reply(ok(body, status=400, **{"x-acs-retry-after": "1500"}))
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert error.retry_after == 1.5
        assert error.throttling
        assert error.classification is Classification.RETRY

    @pytest.mark.parametrize("header", ["0", "-5", "soon", ""])
    async def test_unusable_retry_after_is_ignored(
        self, header: str, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(
            ok({"Code": "InvalidParameter", "Message": "x"}, status=400, **{"x-acs-retry-after": header})
        )
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert error.retry_after is None
        assert error.classification is Classification.TERMINAL

    async def test_non_json_error_body(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        page = "<html><body>502 Bad Gateway from the proxy</body></html>"
        recorder.reply(
            httpx.Response(502, text=page, headers={"content-type": "text/html", "x-acs-request-id": "r-6"})
        )
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert error.code == "HTTP502"
        assert error.http_status == 502
        assert error.request_id == "r-6"
        assert "text/html" in error.message
        assert "Bad Gateway from the proxy" not in str(error)
        assert error.classification is Classification.AMBIGUOUS

    async def test_json_error_without_code(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(ok({"RequestId": "r-5"}, status=403))
        error = await _fail(client, creds)
        assert isinstance(error, ApiError)
        assert (error.code, error.http_status, error.request_id) == ("HTTP403", 403, "r-5")
        assert error.classification is Classification.TERMINAL


class TestBadSuccessBodies:
    @pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b'"text"'])
    async def test_unparseable_2xx(
        self, content: bytes, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(httpx.Response(200, content=content))
        error = await _fail(client, creds)
        assert isinstance(error, ResponseError)
        assert error.classification is Classification.AMBIGUOUS

    async def test_2xx_missing_required_fields(
        self, client: EmrClient, recorder: Recorder, creds: StaticCredentials
    ) -> None:
        recorder.reply(ok({"RequestId": "r-4", "Operation": {"OperationState": "DONE?"}}))
        error = await _fail(client, creds)
        assert isinstance(error, ResponseError)
        assert "r-4" in str(error)
        assert "Operation" in str(error)


class TestTransportErrors:
    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (httpx.ConnectError("[Errno 111] Connection refused"), RequestNotSentError),
            (httpx.ConnectError("[Errno -2] Name or service not known"), RequestNotSentError),
            (httpx.ConnectTimeout("timed out"), RequestNotSentError),
            (httpx.PoolTimeout("no connection available"), RequestNotSentError),
            (httpx.ProxyError("proxy refused"), RequestNotSentError),
            (httpx.UnsupportedProtocol("bad scheme"), RequestNotSentError),
            (httpx.ReadTimeout("timed out"), OutcomeUnknownError),
            (httpx.WriteTimeout("timed out"), OutcomeUnknownError),
            (
                httpx.RemoteProtocolError("Server disconnected without sending a response."),
                OutcomeUnknownError,
            ),
            (httpx.ReadError("connection reset"), OutcomeUnknownError),
            (httpx.WriteError("broken pipe"), OutcomeUnknownError),
            (httpx.CloseError("close failed"), OutcomeUnknownError),
            (httpx.LocalProtocolError("illegal header"), OutcomeUnknownError),
            (httpx.DecodingError("bad gzip"), OutcomeUnknownError),
        ],
        ids=lambda value: type(value).__name__ if isinstance(value, Exception) else value.__name__,
    )
    async def test_translation(
        self,
        raised: Exception,
        expected: type[Exception],
        client: EmrClient,
        recorder: Recorder,
        creds: StaticCredentials,
    ) -> None:
        recorder.reply(raised)
        error = await _fail(client, creds)
        assert type(error) is expected
        assert error.__cause__ is raised
        assert "GetOperation" in str(error)
        expected_class = Classification.RETRY if expected is RequestNotSentError else Classification.AMBIGUOUS
        assert error.classification is expected_class  # type: ignore[attr-defined]

    def test_every_httpx_request_error_is_classified(self) -> None:
        """Fails when httpx grows an error class: decide consciously which side it belongs to."""

        def subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
            found = set(cls.__subclasses__())
            for sub in list(found):
                found |= subclasses(sub)
            return found

        known_unknown = {
            httpx.TimeoutException,
            httpx.ReadTimeout,
            httpx.WriteTimeout,
            httpx.NetworkError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.CloseError,
            httpx.ProtocolError,
            httpx.LocalProtocolError,
            httpx.RemoteProtocolError,
            httpx.DecodingError,
            httpx.TooManyRedirects,
            httpx.TransportError,
        }
        every = subclasses(httpx.RequestError)
        assert every == set(NOT_SENT) | known_unknown
        for cls in every:
            error = translate(cls("x"), action="A", host="h")
            wanted = RequestNotSentError if cls in NOT_SENT else OutcomeUnknownError
            assert type(error) is wanted, cls

    async def test_overall_deadline(self, recorder: Recorder, creds: StaticCredentials) -> None:
        async def hang(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(30)
            return httpx.Response(200)

        async with EmrClient(transport=httpx.MockTransport(hang), deadline=0.05) as emr:
            with pytest.raises(OutcomeUnknownError, match="deadline") as info:
                await emr.get_operation(GET_OP, credentials=creds)
        assert isinstance(info.value.__cause__, TimeoutError)
