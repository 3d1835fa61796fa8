"""Which credentials a ServiceAction's calls are signed with, resolved once per worker.

A ``credentialsSecretRef`` names a Secret in the object's own namespace (keys ``accessKeyId``,
``accessKeySecret``, optional ``securityToken``); without one, the operator's default chain is
used. ``resolve`` also names the source for messages (the Secret and the AccessKey ID's last
characters: never a secret) and the rate limiter's key (EMR counts quotas per access key and
region).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from emrops.api.spec import ServiceActionSpec
from emrops.controller.call_errors import describe_credentials
from emrops.controller.kube import ObjectStore, SecretUnreadable
from emrops.controller.ratelimit import LimiterKey
from emrops.emr.credentials import CredentialsProvider, StaticCredentials
from emrops.emr.errors import CredentialsError

#: Keys of a credentials Secret.
ACCESS_KEY_ID = "accessKeyId"
ACCESS_KEY_SECRET = "accessKeySecret"  # noqa: S105 - a key name, not a secret
SECURITY_TOKEN = "securityToken"  # noqa: S105 - a key name, not a secret


@dataclass(frozen=True)
class Resolved:
    """Usable credentials for one ServiceAction."""

    provider: CredentialsProvider
    limiter_key: LimiterKey
    #: Where they came from, for messages (never a secret).
    source: str


async def resolve(
    store: ObjectStore,
    namespace: str,
    spec: ServiceActionSpec,
    default: CredentialsProvider,
    *,
    provider_seconds: float,
) -> Resolved:
    """The credentials ``spec`` asks for; raises ``SecretUnreadable`` or ``CredentialsError``.

    The provider is asked once here, so a Secret with a bad key or a default chain that cannot
    produce credentials is reported before anything is submitted.
    """
    provider: CredentialsProvider
    secret_ref: str | None = None
    if spec.credentials_secret_ref is not None:
        name = spec.credentials_secret_ref.name
        secret_ref = f"{namespace}/{name}"
        data = await store.read_secret(namespace, name)
        for key in (ACCESS_KEY_ID, ACCESS_KEY_SECRET):
            if not data.get(key):
                raise SecretUnreadable(
                    f"Secret {secret_ref} (spec.credentialsSecretRef) has no key {key}; it needs "
                    f"{ACCESS_KEY_ID} and {ACCESS_KEY_SECRET} (and optionally {SECURITY_TOKEN})"
                )
        provider = StaticCredentials(data[ACCESS_KEY_ID], data[ACCESS_KEY_SECRET], data.get(SECURITY_TOKEN))
    else:
        provider = default
    try:
        async with asyncio.timeout(provider_seconds):
            credential = await provider.get()
    except TimeoutError:
        raise CredentialsError(
            f"the credentials provider did not answer within {provider_seconds:g}s"
        ) from None
    return Resolved(
        provider=provider,
        limiter_key=LimiterKey(credential.access_key_id, spec.region_id),
        source=describe_credentials(credential.access_key_id, secret_ref),
    )
