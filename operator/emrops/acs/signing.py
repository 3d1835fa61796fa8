"""Alibaba Cloud API request signatures: ACS3-HMAC-SHA256 (V3) and the legacy RPC HMAC-SHA1 (V1).

Pure functions of their inputs, shared by the client (to sign) and the emulator (to verify), and
pinned by the test vectors of the wire-protocol reference. Secrets are only ever HMAC keys here:
nothing in this module formats them into a string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

ACS3_HMAC_SHA256 = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the signers use it: keep ``A-Za-z0-9-_.~``, ``%XX`` the rest."""
    return quote(value, safe="-_.~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Sorted ``key=value`` pairs, both percent-encoded, joined by ``&``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> tuple[str, str]:
    """(CanonicalHeaders, SignedHeaders) for the named headers; names lower-cased, values stripped."""
    lowered = {name.lower(): value for name, value in headers.items()}
    names = sorted({name.lower() for name in signed})
    block = "".join(f"{name}:{lowered.get(name, '').strip()}\n" for name in names)
    return block, ";".join(names)


def acs3_string_to_sign(
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    payload_hash: str = EMPTY_SHA256,
) -> str:
    header_block, header_names = canonical_headers(headers, signed_headers)
    canonical_request = "\n".join(
        [method.upper(), path or "/", canonical_query(query), header_block, header_names, payload_hash]
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ACS3_HMAC_SHA256}\n{digest}"


def acs3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def acs3_authorization(
    *,
    access_key_id: str,
    access_key_secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str = EMPTY_SHA256,
) -> str:
    """The ``Authorization`` header value, signing every header in ``headers``."""
    names = sorted(name.lower() for name in headers if name.lower() != "authorization")
    to_sign = acs3_string_to_sign(
        method=method,
        path=path,
        query=query,
        headers=headers,
        signed_headers=names,
        payload_hash=payload_hash,
    )
    signature = acs3_signature(access_key_secret, to_sign)
    return (
        f"{ACS3_HMAC_SHA256} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={signature}"
    )


def parse_acs3_authorization(value: str) -> tuple[str, str, list[str], str] | None:
    """(algorithm, access key id, signed header names, signature), or None if malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    try:
        return algorithm, fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError:
        return None


def rpc_v1_signature(secret: str, method: str, params: Iterable[tuple[str, str]]) -> str:
    """Legacy RPC signature: base64(HMAC-SHA1(secret + '&', METHOD&%2F&pct(canonical query)))."""
    to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()
