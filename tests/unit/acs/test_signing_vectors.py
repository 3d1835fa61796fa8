"""The wire-protocol reference's signature vectors, checked directly on ``emrops.acs.signing``.

The vectors were produced by the official SDK with fixed date, nonce and user agent (reference
section 2.2 and 2.3); the SDK itself is re-run against our client in ``tests/unit/emr``.
"""

from __future__ import annotations

import hashlib

import pytest

from emrops.acs.signing import (
    EMPTY_SHA256,
    acs3_authorization,
    acs3_signature,
    acs3_string_to_sign,
    canonical_headers,
    parse_acs3_authorization,
    rpc_v1_signature,
)

AK = "testAccessKeyId"
SECRET = "testAccessKeySecret"
DATE = "2024-01-01T00:00:00Z"
NONCE = "3b1f5c7a9d2e4f6081a2b3c4d5e6f708"
UA = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
QUERY = [
    ("ClusterId", "c-b933c5aac8fe****"),
    ("OperationId", "op-13c37a77c505****"),
    ("RegionId", "cn-hangzhou"),
]


def _headers(**extra: str) -> dict[str, str]:
    headers = {
        "host": "emr.aliyuncs.com",
        "x-acs-version": "2021-03-20",
        "x-acs-action": "GetOperation",
        "user-agent": UA,
        "x-acs-date": DATE,
        "x-acs-signature-nonce": NONCE,
        "accept": "application/json",
        "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-credentials-provider": "static_ak",
    }
    headers.update(extra)
    return headers


def _authorization(headers: dict[str, str]) -> str:
    return acs3_authorization(
        access_key_id=AK, access_key_secret=SECRET, method="POST", path="/", query=QUERY, headers=headers
    )


def test_empty_payload_hash() -> None:
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_get_operation_canonical_request_digest() -> None:
    headers = _headers()
    to_sign = acs3_string_to_sign(
        method="POST", path="/", query=QUERY, headers=headers, signed_headers=headers
    )
    assert to_sign == "ACS3-HMAC-SHA256\ne51de71f0bfe2cf8226b22284cf77336fe1764ff1e105061db65be01ed6df887"


def test_get_operation_authorization() -> None:
    assert _authorization(_headers()) == (
        "ACS3-HMAC-SHA256 Credential=testAccessKeyId,"
        "SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;"
        "x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=26395b3421e40578f2528c4521bdf7a67d08079f32c464c3cdac57e20fbf3163"
    )


def test_header_names_are_case_insensitive() -> None:
    upper = {name.title(): value for name, value in _headers().items()}
    assert _authorization(upper) == _authorization(_headers())


def test_reduced_signed_headers() -> None:
    signed = [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
    ]
    to_sign = acs3_string_to_sign(
        method="POST", path="/", query=QUERY, headers=_headers(), signed_headers=signed
    )
    assert (
        acs3_signature(SECRET, to_sign) == "171425fdd8206f603b66f52e21b4588b7ffca333be1ad0612f68ec1c5bf3d617"
    )


def test_sts_variant() -> None:
    headers = _headers(
        **{
            "x-acs-credentials-provider": "static_sts",
            "x-acs-accesskey-id": AK,
            "x-acs-security-token": "testSecurityToken",
        }
    )
    parsed = parse_acs3_authorization(_authorization(headers))
    assert parsed is not None
    algorithm, credential, names, signature = parsed
    assert (algorithm, credential) == ("ACS3-HMAC-SHA256", AK)
    assert names == sorted(names) and "x-acs-security-token" in names and "x-acs-accesskey-id" in names
    assert signature == "4a7bf0c071071264860d497fadcd4fe8c5eb607b211fd35103a3ccf52a81b163"


def test_wrong_secret_changes_signature() -> None:
    good = _authorization(_headers())
    bad = acs3_authorization(
        access_key_id=AK,
        access_key_secret=SECRET + "x",
        method="POST",
        path="/",
        query=QUERY,
        headers=_headers(),
    )
    assert good != bad


def test_canonical_headers_strip_values_and_sort() -> None:
    block, names = canonical_headers({"X-B": "  two  ", "x-a": "one"}, ["x-b", "X-A"])
    assert block == "x-a:one\nx-b:two\n"
    assert names == "x-a;x-b"


def test_rpc_v1_hmac_sha1_vector() -> None:
    params = [
        ("AccessKeyId", AK),
        ("Action", "GetOperation"),
        ("Format", "json"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", NONCE),
        ("SignatureVersion", "1.0"),
        ("Timestamp", DATE),
        ("Version", "2021-03-20"),
        *QUERY,
    ]
    assert rpc_v1_signature(SECRET, "POST", params) == "bZx8FsCm1qGNevckWBU13wgYw3E="


@pytest.mark.parametrize(
    "value",
    ["", "Authorization", "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host", "ACS3-HMAC-SHA256 junk"],
)
def test_parse_malformed_authorization(value: str) -> None:
    assert parse_acs3_authorization(value) is None


def test_payload_hash_is_part_of_the_signature() -> None:
    headers = _headers()
    body_hash = hashlib.sha256(b"x").hexdigest()
    a = acs3_string_to_sign(method="POST", path="/", query=QUERY, headers=headers, signed_headers=headers)
    b = acs3_string_to_sign(
        method="POST", path="/", query=QUERY, headers=headers, signed_headers=headers, payload_hash=body_hash
    )
    assert a != b
