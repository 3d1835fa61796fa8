"""Helpers for the EMR client's unit tests: a recording ``httpx.MockTransport`` and fixed inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from emrops.emr.client import EmrClient

FIXED_DATE = datetime(2024, 1, 1, tzinfo=UTC)
FIXED_NONCE = "3b1f5c7a9d2e4f6081a2b3c4d5e6f708"
SDK_UA = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
# Distinctive values so tests can search logs and messages for them.
SECRET = "sEcReT-do-not-leak-8f3a"
TOKEN = "sts-ToKeN-do-not-leak-c71e"

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers from a queue (or a default)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.queue: list[httpx.Response | Exception | Handler] = []
        self.default: httpx.Response = httpx.Response(200, json={"RequestId": "req-default"})

    def reply(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.queue.extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer: httpx.Response | Exception | Handler = self.queue.pop(0) if self.queue else self.default
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def ok(body: dict[str, Any], status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sdk_like_client(recorder: Recorder) -> EmrClient:
    """A client answered by ``recorder`` that signs as the SDK would at ``FIXED_DATE``/``FIXED_NONCE``."""
    return EmrClient(
        transport=httpx.MockTransport(recorder),
        clock=lambda: FIXED_DATE,
        nonce=lambda: FIXED_NONCE,
        user_agent=SDK_UA,
    )
