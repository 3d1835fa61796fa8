"""Fixtures for the EMR client's unit tests (helpers live in ``emr_helpers``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from emr_helpers import FIXED_DATE, FIXED_NONCE, SDK_UA, SECRET, TOKEN, Recorder

from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def creds() -> StaticCredentials:
    return StaticCredentials("testAccessKeyId", SECRET)


@pytest.fixture
def sts_creds() -> StaticCredentials:
    return StaticCredentials("testAccessKeyId", SECRET, security_token=TOKEN)


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[EmrClient]:
    async with EmrClient(
        transport=httpx.MockTransport(recorder),
        clock=lambda: FIXED_DATE,
        nonce=lambda: FIXED_NONCE,
        user_agent=SDK_UA,
    ) as emr:
        yield emr
