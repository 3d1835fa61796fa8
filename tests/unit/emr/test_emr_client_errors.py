"""Every way a call can fail, and the error type and fields each one produces."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest
from emr_helpers import CONNECTION_KEY, PROXY_KEY, REQUEST_INFO, TOKEN, Recorder, ok
from yarl import URL

from emrops.acs.codes import Classification
from emrops.emr.aiohttp_errors import NOT_SENT, translate
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.errors import ApiError, OutcomeUnknownError, RequestNotSentError, ResponseError
from emrops.emr.http import HttpRequest, HttpResponse
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
            HttpResponse.of(502, page.encode(), {"Content-Type": "text/html", "X-Acs-Request-Id": "r-6"})
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
        recorder.reply(HttpResponse.of(200, content))
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
            (
                aiohttp.ClientConnectorError(CONNECTION_KEY, OSError(111, "Connection refused")),
                RequestNotSentError,
            ),
            (
                aiohttp.ClientConnectorDNSError(CONNECTION_KEY, OSError(-2, "Name or service not known")),
                RequestNotSentError,
            ),
            (
                aiohttp.ClientConnectorCertificateError(
                    CONNECTION_KEY, ssl.SSLCertVerificationError(1, "unknown CA")
                ),
                RequestNotSentError,
            ),
            (
                aiohttp.ClientConnectorSSLError(CONNECTION_KEY, ssl.SSLError(1, "handshake failure")),
                RequestNotSentError,
            ),
            (
                aiohttp.ClientProxyConnectionError(PROXY_KEY, OSError(111, "Connection refused")),
                RequestNotSentError,
            ),
            (aiohttp.ConnectionTimeoutError("Connection timeout to host"), RequestNotSentError),
            (
                aiohttp.ClientHttpProxyError(
                    REQUEST_INFO, (), status=407, message="Proxy Authentication Required"
                ),
                RequestNotSentError,
            ),
            (aiohttp.InvalidUrlClientError(URL("https:///")), RequestNotSentError),
            (aiohttp.NonHttpUrlClientError(URL("ftp://h/")), RequestNotSentError),
            (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), OutcomeUnknownError),
            (aiohttp.ServerDisconnectedError(), OutcomeUnknownError),
            (aiohttp.ClientOSError(32, "Broken pipe"), OutcomeUnknownError),
            (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), OutcomeUnknownError),
            (aiohttp.ClientPayloadError("Response payload is not completed"), OutcomeUnknownError),
            (
                aiohttp.ClientResponseError(REQUEST_INFO, (), status=400, message="Invalid HTTP header"),
                OutcomeUnknownError,
            ),
            (aiohttp.ServerFingerprintMismatch(b"a", b"b", "emr.aliyuncs.com", 443), OutcomeUnknownError),
            (ConnectionResetError(104, "Connection reset by peer"), OutcomeUnknownError),
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
        assert "GetOperation" in str(error)
        assert type(raised).__name__ in str(error)
        expected_class = Classification.RETRY if expected is RequestNotSentError else Classification.AMBIGUOUS
        assert error.classification is expected_class  # type: ignore[attr-defined]
        # Not chained: some aiohttp errors keep the request's headers (so the STS token) with them.
        assert error.__cause__ is None and error.__context__ is None
        assert "proxy-pw" not in str(error) and TOKEN not in str(error)

    def test_every_aiohttp_client_error_is_classified(self) -> None:
        """Fails when aiohttp grows an error class: decide consciously which side it belongs to."""

        def subclasses(cls: type[BaseException]) -> set[type[BaseException]]:
            found = set(cls.__subclasses__())
            for sub in list(found):
                found |= subclasses(sub)
            return found

        reviewed_not_sent = {
            aiohttp.ClientConnectorError,
            aiohttp.ClientConnectorDNSError,
            aiohttp.ClientSSLError,
            aiohttp.ClientConnectorSSLError,
            aiohttp.ClientConnectorCertificateError,
            aiohttp.ClientProxyConnectionError,
            aiohttp.client_exceptions.UnixClientConnectorError,
            aiohttp.ConnectionTimeoutError,
            aiohttp.ClientHttpProxyError,
            aiohttp.InvalidURL,
            aiohttp.InvalidUrlClientError,
            aiohttp.client_exceptions.InvalidUrlRedirectClientError,
            aiohttp.NonHttpUrlClientError,
            aiohttp.client_exceptions.NonHttpUrlRedirectClientError,
        }
        reviewed_unknown = {
            aiohttp.ClientConnectionError,
            aiohttp.ClientConnectionResetError,
            aiohttp.ClientOSError,
            aiohttp.ClientPayloadError,
            aiohttp.ClientResponseError,
            aiohttp.ContentTypeError,
            aiohttp.RedirectClientError,
            aiohttp.ServerConnectionError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ServerFingerprintMismatch,  # after the handshake; we pin no fingerprint anyway
            aiohttp.ServerTimeoutError,
            aiohttp.SocketTimeoutError,
            aiohttp.TooManyRedirects,
            aiohttp.WSServerHandshakeError,
            aiohttp.client_exceptions.UploadAbortedError,
        }
        every = subclasses(aiohttp.ClientError)
        assert every == reviewed_not_sent | reviewed_unknown
        for cls in every:
            assert issubclass(cls, NOT_SENT) == (cls in reviewed_not_sent), cls
            error = translate(cls.__new__(cls), action="A", host="h")
            wanted = RequestNotSentError if cls in reviewed_not_sent else OutcomeUnknownError
            assert type(error) is wanted, cls

    async def test_overall_deadline(self, recorder: Recorder, creds: StaticCredentials) -> None:
        async def hang(request: HttpRequest) -> HttpResponse:
            await asyncio.sleep(30)
            return HttpResponse.of(200)

        recorder.reply(hang)
        async with EmrClient(transport=recorder, deadline=0.05) as emr:
            with pytest.raises(OutcomeUnknownError, match="deadline") as info:
                await emr.get_operation(GET_OP, credentials=creds)
        assert info.value.__context__ is None


async def test_a_closed_client_sends_nothing(recorder: Recorder, creds: StaticCredentials) -> None:
    emr = EmrClient(transport=recorder)
    await emr.aclose()
    with pytest.raises(RequestNotSentError, match="closed"):
        await emr.get_operation(GET_OP, credentials=creds)
    assert recorder.closed and recorder.requests == []
