"""Building one signed RPC request exactly as the official Python SDK sends it.

``POST /?<flattened params>`` with an empty body, the ``x-acs-*`` headers, and an
ACS3-HMAC-SHA256 ``Authorization`` over every header we send (the SDK signs every header it
has at signing time, and so do we). Query values are rendered and URL-encoded like the SDK
(``urllib.parse.urlencode``: space ``+``, ``*`` ``%2A``, booleans ``True``/``False``), so the
wire bytes match the SDK's for the same request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from yarl import URL

from emrops.acs.flatten import flatten
from emrops.acs.signing import EMPTY_SHA256, acs3_authorization
from emrops.emr.credentials import Credential
from emrops.emr.http import HttpRequest

API_VERSION = "2021-03-20"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Clock = Callable[[], datetime]
Nonce = Callable[[], str]


def utc_now() -> datetime:
    return datetime.now(UTC)


def random_nonce() -> str:
    """32 random hex digits, fresh for every attempt (EMR refuses a reused nonce)."""
    return secrets.token_hex(16)


def format_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the clock must return a timezone-aware datetime")
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def build_request(
    *,
    action: str,
    params: Mapping[str, Any],
    base_url: URL,
    credential: Credential,
    user_agent: str,
    date: str,
    nonce: str,
    idempotent: bool = True,
) -> HttpRequest:
    """The signed request for ``action`` with the nested ``params`` (API names)."""
    flat = flatten(params)
    host = base_url.raw_authority
    headers: dict[str, str] = {
        "host": host,
        "x-acs-version": API_VERSION,
        "x-acs-action": action,
        "user-agent": user_agent,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "accept": "application/json",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-credentials-provider": credential.provider_name,
    }
    if credential.security_token:
        headers["x-acs-accesskey-id"] = credential.access_key_id
        headers["x-acs-security-token"] = credential.security_token
    headers["authorization"] = acs3_authorization(
        access_key_id=credential.access_key_id,
        access_key_secret=credential.access_key_secret,
        method="POST",
        path="/",
        query=flat.items(),
        headers=headers,
        payload_hash=EMPTY_SHA256,
    )
    # Encoded here, once: the URL is sent as it is (yarl would otherwise requote %2A as *).
    query = urlencode(flat)
    url = URL(f"{base_url.scheme}://{host}/" + (f"?{query}" if query else ""), encoded=True)
    return HttpRequest("POST", url, headers, idempotent=idempotent)
