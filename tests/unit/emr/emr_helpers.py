"""Helpers for the EMR client's unit tests: a recording transport and fixed inputs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from emrops.emr.client import EmrClient
from emrops.emr.http import HttpRequest, HttpResponse

FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)
FIXED_NONCE = "3b1f5c7a9d2e4f6081a2b3c4d5e6f708"
SDK_UA = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
# Distinctive values so tests can search logs and messages for them.
SECRET = "sEcReT-do-not-leak-8f3a"
TOKEN = "sts-ToKeN-do-not-leak-c71e"

#: What aiohttp's connection errors name: the host (and the proxy, with its password if any).
CONNECTION_KEY = ConnectionKey("emr.aliyuncs.com", 443, True, True, None, None, None, None)
PROXY_KEY = ConnectionKey(
    "proxy.internal", 3128, False, True, URL("http://u:proxy-pw@proxy.internal:3128"), None, None, None
)
#: What aiohttp keeps of a request in some of its errors: its headers, so the STS token.
REQUEST_INFO = RequestInfo(
    URL("https://emr.aliyuncs.com/?RegionId=cn-hangzhou"),
    "POST",
    CIMultiDictProxy(CIMultiDict({"x-acs-security-token": TOKEN})),
)

Handler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class Recorder:
    """A transport that records requests and answers from a queue (or a default).

    An answer is a response, an exception to raise (aiohttp's, as the real transport raises), or
    a handler called with the request (sync or async).
    """

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.queue: list[HttpResponse | BaseException | Handler] = []
        self.default: HttpResponse = ok({"RequestId": "req-default"})
        self.closed = False

    def reply(self, *answers: HttpResponse | BaseException | Handler) -> None:
        self.queue.extend(answers)

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        answer = self.queue.pop(0) if self.queue else self.default
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, HttpResponse):
            return answer
        result = answer(request)
        return result if isinstance(result, HttpResponse) else await result

    async def aclose(self) -> None:
        self.closed = True

    @property
    def last(self) -> HttpRequest:
        return self.requests[-1]


def ok(body: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    content = json.dumps(body).encode()
    return HttpResponse.of(status, content, {"content-type": "application/json", **headers})


def query_of(request: HttpRequest) -> str:
    """The query string exactly as it goes on the wire."""
    return request.url.raw_query_string


def params_of(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(query_of(request), keep_blank_values=True))


def sdk_like_client(recorder: Recorder) -> EmrClient:
    """A client answered by ``recorder`` that signs as the SDK would at ``FIXED_DATE``/``FIXED_NONCE``."""
    return EmrClient(
        transport=recorder,
        clock=lambda: FIXED_DATE,
        nonce=lambda: FIXED_NONCE,
        user_agent=SDK_UA,
    )
