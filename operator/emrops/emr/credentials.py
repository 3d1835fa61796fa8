"""Credentials the client signs with, and where they come from.

A ``CredentialsProvider`` is anything with ``async def get() -> Credential``. The client asks it
once per request, so providers that refresh (RRSA / OIDC, ECS RAM roles) hand out fresh STS
tokens without the client knowing.

- ``StaticCredentials``: an access key pair, optionally with an STS token (e.g. from a Secret).
- ``DefaultChainCredentials``: the Alibaba Cloud default chain (environment variables, RRSA OIDC,
  CLI profile, credentials file, ECS RAM role, credentials URI) through ``alibabacloud-credentials``,
  which caches and refreshes before expiry.

Secrets (the access key secret and the security token) are excluded from every ``repr`` and
never formatted into an exception message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from emrops.emr.errors import CredentialsError

#: Environment variables whose values are secret: scrubbed from messages of the credentials library.
_SECRET_ENV_VARS = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN")
_MAX_DETAIL = 600

DEFAULT_CHAIN_HELP = (
    "configure one of: the environment variables ALIBABA_CLOUD_ACCESS_KEY_ID and "
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET (optionally ALIBABA_CLOUD_SECURITY_TOKEN); "
    "RRSA (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and ALIBABA_CLOUD_OIDC_TOKEN_FILE, "
    "set by ACK's pod identity); "
    "an ECS RAM role; or a credentialsSecretRef on the ServiceAction"
)


@dataclass(frozen=True)
class Credential:
    """One set of keys to sign a request with.

    ``provider_name`` goes to the ``x-acs-credentials-provider`` header (``static_ak``,
    ``static_sts``, ``default/env``, ``default/oidc_role_arn``, ...).
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    provider_name: str = "static_ak"
    expiration: datetime | None = None


@runtime_checkable
class CredentialsProvider(Protocol):
    """Source of credentials, asked before every request."""

    async def get(self) -> Credential: ...


class StaticCredentials:
    """A fixed access key pair, with an STS security token when given.

    ``StaticCredentials("LTAI...", secret)`` signs as ``static_ak``; with ``security_token=`` it
    signs as ``static_sts`` and adds the token headers.
    """

    def __init__(self, access_key_id: str, access_key_secret: str, security_token: str | None = None) -> None:
        if not access_key_id:
            raise CredentialsError("the access key id is empty")
        if not access_key_secret:
            raise CredentialsError(f"the access key secret for access key id {access_key_id!r} is empty")
        provider = "static_sts" if security_token else "static_ak"
        self._credential = Credential(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token or None,
            provider_name=provider,
        )

    @property
    def access_key_id(self) -> str:
        return self._credential.access_key_id

    async def get(self) -> Credential:
        return self._credential

    def __repr__(self) -> str:
        return (
            f"StaticCredentials(access_key_id={self._credential.access_key_id!r}, "
            f"provider={self._credential.provider_name!r})"
        )


class DefaultChainCredentials:
    """The Alibaba Cloud default credentials chain, via ``alibabacloud_credentials``' async API.

    The chain's first link, an access key pair in ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
    ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (optionally ``ALIBABA_CLOUD_SECURITY_TOKEN``), is read
    here without the library: importing it costs about 8 MiB and pulls in requests and APScheduler
    (whose ECS-role refresher starts a thread), none of which a key in the environment needs. The
    answer is the library's for that case (``default/env``), and the library is imported only when
    the environment holds no key, i.e. when the chain's other links (RRSA, profiles, ECS role) are
    really used.

    The library's client is built on first use, not at construction: the library reads its
    environment variables when it is imported and when its chain is built, so building late lets
    the process finish configuring its environment first. Refreshing (RRSA tokens, ECS roles) and
    caching are the library's; every ``get()`` returns what it currently holds.
    """

    def __init__(self) -> None:
        self._client: Any = None

    @staticmethod
    def _from_environment() -> Credential | None:
        """The chain's environment link, as the library resolves it (both variables non-empty)."""
        access_key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        access_key_secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not access_key_id or not access_key_secret:
            return None
        return Credential(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
            provider_name="default/env",
        )

    def _library_client(self) -> Any:
        if self._client is None:
            from alibabacloud_credentials.client import Client

            self._client = Client()
        return self._client

    async def get(self) -> Credential:
        from_environment = self._from_environment()
        if from_environment is not None:
            return from_environment
        try:
            model = await self._library_client().get_credential_async()
        except Exception as exc:
            raise CredentialsError(
                f"no credentials from the Alibaba Cloud default chain: {DEFAULT_CHAIN_HELP} "
                f"(details: {_scrub(str(exc))})"
            ) from exc
        access_key_id = getattr(model, "access_key_id", None)
        access_key_secret = getattr(model, "access_key_secret", None)
        if not access_key_id or not access_key_secret:
            raise CredentialsError(
                f"the Alibaba Cloud default chain returned no access key pair: {DEFAULT_CHAIN_HELP}"
            )
        return Credential(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=getattr(model, "security_token", None) or None,
            provider_name=getattr(model, "provider_name", None) or "default",
        )

    def __repr__(self) -> str:
        return "DefaultChainCredentials()"


def _scrub(text: str) -> str:
    """The library's message, shortened, with any secret from the environment blanked out."""
    for name in _SECRET_ENV_VARS:
        value = os.environ.get(name)
        if value:
            text = text.replace(value, "***")
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "..."
    return text
