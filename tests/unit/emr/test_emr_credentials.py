"""Credential providers: static keys and the Alibaba Cloud default chain."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from emr_helpers import SECRET, TOKEN

from emrops.emr.credentials import Credential, DefaultChainCredentials, StaticCredentials
from emrops.emr.errors import CredentialsError

_CHAIN_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_URI",
    "ALIBABA_CLOUD_ECS_METADATA",
)


@pytest.fixture
def chain_env(tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean environment for the chain: no files, no ECS metadata, nothing inherited.

    ``alibabacloud_credentials`` reads its variables into module globals when imported, so the
    module is re-read after the test sets them, and again after they are restored.
    """
    from alibabacloud_credentials.utils import auth_util

    with pytest.MonkeyPatch.context() as mp:
        for name in _CHAIN_VARS:
            mp.delenv(name, raising=False)
        mp.setenv("HOME", str(tmp_path))
        mp.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        mp.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
        mp.setenv("ALIBABA_CLOUD_CREDENTIALS_FILE", str(tmp_path / "missing-credentials.ini"))
        yield mp
    importlib.reload(auth_util)


def _reload_library() -> None:
    from alibabacloud_credentials.utils import auth_util

    importlib.reload(auth_util)


def _keys_in_environment(env: pytest.MonkeyPatch, key_id: str = "envAKID", token: str | None = None) -> None:
    """Put a key (and an STS token) in the chain's variables, as the library will read them."""
    env.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    if token is not None:
        env.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", token)
    _reload_library()


async def test_static_ak() -> None:
    credential = await StaticCredentials("AKID", SECRET).get()
    assert credential == Credential("AKID", SECRET, None, "static_ak")


async def test_static_sts() -> None:
    credential = await StaticCredentials("AKID", SECRET, security_token=TOKEN).get()
    assert (credential.security_token, credential.provider_name) == (TOKEN, "static_sts")


async def test_default_chain_from_environment(chain_env: pytest.MonkeyPatch) -> None:
    _keys_in_environment(chain_env)
    provider = DefaultChainCredentials()
    credential = await provider.get()
    assert (credential.access_key_id, credential.access_key_secret) == ("envAKID", SECRET)
    assert credential.security_token is None
    assert credential.provider_name == "default/env"
    assert await provider.get() == credential  # the library client is kept and reused


async def test_default_chain_from_environment_with_sts_token(chain_env: pytest.MonkeyPatch) -> None:
    _keys_in_environment(chain_env, token=TOKEN)
    credential = await DefaultChainCredentials().get()
    assert credential.security_token == TOKEN


async def test_default_chain_with_nothing_configured(chain_env: pytest.MonkeyPatch) -> None:
    _reload_library()
    with pytest.raises(CredentialsError) as info:
        await DefaultChainCredentials().get()
    message = str(info.value)
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in message
    assert "RRSA" in message
    assert SECRET not in message


async def test_default_chain_built_lazily(chain_env: pytest.MonkeyPatch) -> None:
    """Creating the provider reads nothing: the environment may still change before first use."""
    _reload_library()
    provider = DefaultChainCredentials()
    _keys_in_environment(chain_env, key_id="lateAKID")
    assert (await provider.get()).access_key_id == "lateAKID"


async def test_default_chain_error_scrubs_secret_from_library_message(
    chain_env: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_env.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)

    class Leaky:
        async def get_credential_async(self) -> object:
            raise RuntimeError(f"bad response for secret {SECRET}")

    provider = DefaultChainCredentials()
    monkeypatch.setattr(provider, "_client", Leaky())
    with pytest.raises(CredentialsError) as info:
        await provider.get()
    assert SECRET not in str(info.value)
    assert "bad response" in str(info.value)


async def test_default_chain_from_environment_answers_as_the_library(chain_env: pytest.MonkeyPatch) -> None:
    """The environment link read without the library gives exactly what the library gives."""
    from alibabacloud_credentials.client import Client

    _keys_in_environment(chain_env, token=TOKEN)
    ours = await DefaultChainCredentials().get()
    theirs = await Client().get_credential_async()
    assert (ours.access_key_id, ours.access_key_secret, ours.security_token, ours.provider_name) == (
        theirs.access_key_id,
        theirs.access_key_secret,
        theirs.security_token,
        theirs.provider_name,
    )


def test_default_chain_with_a_key_in_the_environment_never_imports_the_library(tmp_path: Path) -> None:
    """The library (about 8 MiB, requests, APScheduler) is loaded only for the chain's other links."""
    probe = (
        "import asyncio, sys\n"
        "from emrops.emr.credentials import DefaultChainCredentials\n"
        "credential = asyncio.run(DefaultChainCredentials().get())\n"
        "print(credential.provider_name, 'alibabacloud_credentials' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    env.update(
        ALIBABA_CLOUD_ACCESS_KEY_ID="envAKID", ALIBABA_CLOUD_ACCESS_KEY_SECRET=SECRET, HOME=str(tmp_path)
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["default/env", "False"]
