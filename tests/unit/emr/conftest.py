"""Fixtures for the EMR client's unit tests (helpers live in ``emr_helpers``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from emr_helpers import SECRET, TOKEN, Recorder, sdk_like_client

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
    async with sdk_like_client(recorder) as emr:
        yield emr
