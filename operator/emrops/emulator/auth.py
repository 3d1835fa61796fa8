"""The gateway's signature checks: ACS3-HMAC-SHA256 and the legacy RPC HMAC-SHA1.

ACS3 follows the reference's verification recipe: recompute the signature from the method, path,
the decoded query, only the headers named in SignedHeaders and the SHA-256 of the raw body. An STS
key's token must arrive (signed) in ``x-acs-security-token`` (V1: ``SecurityToken``). Dates more than
``window`` seconds off are refused, and a nonce is accepted once per window. Pure: no HTTP library;
the caller passes headers as lower-cased names mapped to their values.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from emrops.acs.signing import ACS3_HMAC_SHA256, acs3_signature, acs3_string_to_sign, rpc_v1_signature
from emrops.emulator.errors import EmulatorError
from emrops.emulator.scenario import AccessKey

DEFAULT_WINDOW_SECONDS = 15 * 60
V1_AUTH_PARAMS = frozenset(
    {
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "SignatureType",
        "Timestamp",
        "AccessKeyId",
        "SecurityToken",
        "Format",
        "Action",
        "Version",
    }
)
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers, as received."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    form: Sequence[tuple[str, str]]
    headers: Mapping[str, Sequence[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return ",".join(sorted(v.strip() for v in values)) if values else None

    def param(self, name: str) -> str | None:
        found = [v for k, v in [*self.query, *self.form] if k == name]
        return found[-1] if found else None


def claimed_access_key_id(request: SignedRequest) -> str | None:
    """The access key id a request claims, before any check (for the call log)."""
    auth = request.header("authorization")
    if auth:
        for part in auth.partition(" ")[2].split(","):
            name, _, value = part.strip().partition("=")
            if name == "Credential":
                return value
        return None
    return request.param("AccessKeyId")


class Authenticator:
    """Verifies signatures against the configured keys and remembers nonces."""

    def __init__(
        self,
        keys: Sequence[AccessKey],
        *,
        window: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = {k.access_key_id: k for k in keys}
        self._window = window
        self._clock = clock
        self._nonces: OrderedDict[str, float] = OrderedDict()

    def forget_nonces(self) -> None:
        self._nonces.clear()

    def verify(self, request: SignedRequest) -> AccessKey:
        """The key that signed ``request``; raises ``EmulatorError`` with the gateway's code."""
        if request.header("authorization") is not None:
            return self._verify_acs3(request)
        if request.param("Signature") is not None:
            return self._verify_v1(request)
        raise EmulatorError("IncompleteSignature", "The request is not signed.")

    def _key(self, access_key_id: str) -> AccessKey:
        key = self._keys.get(access_key_id)
        if key is None:
            raise EmulatorError("InvalidAccessKeyId.NotFound")
        return key

    def _verify_acs3(self, request: SignedRequest) -> AccessKey:
        algorithm, credential, signed, signature = _parse_authorization(request.header("authorization") or "")
        if algorithm != ACS3_HMAC_SHA256:
            raise EmulatorError(
                "IncompleteSignature", f"Unsupported signature algorithm {algorithm or '(none)'}."
            )
        signed_names = [name.strip().lower() for name in signed if name.strip()]
        for required in ("host", "x-acs-date", "x-acs-signature-nonce"):
            if required not in signed_names or request.header(required) is None:
                raise EmulatorError("IncompleteSignature", f"Header {required} must be present and signed.")
        key = self._key(credential)
        headers = {name: request.header(name) or "" for name in signed_names}
        to_sign = acs3_string_to_sign(
            method=request.method,
            path=request.path or "/",
            query=request.query,
            headers=headers,
            signed_headers=signed_names,
            payload_hash=hashlib.sha256(request.body).hexdigest(),
        )
        if not hmac.compare_digest(acs3_signature(key.secret, to_sign), signature.lower()):
            raise EmulatorError("IncompleteSignature")
        token = headers.get("x-acs-security-token")
        self._check_token(key, token)
        self._check_fresh(headers["x-acs-date"], "x-acs-date")
        self._check_nonce(credential, headers["x-acs-signature-nonce"])
        return key

    def _verify_v1(self, request: SignedRequest) -> AccessKey:
        for required in ("AccessKeyId", "SignatureNonce", "Timestamp"):
            if not request.param(required):
                raise EmulatorError("IncompleteSignature", f"Parameter {required} is required.")
        method = request.param("SignatureMethod") or "HMAC-SHA1"
        if method != "HMAC-SHA1":
            raise EmulatorError("IncompleteSignature", f"Unsupported SignatureMethod {method}.")
        access_key_id = request.param("AccessKeyId") or ""
        key = self._key(access_key_id)
        pairs = [(k, v) for k, v in [*request.query, *request.form] if k != "Signature"]
        expected = rpc_v1_signature(key.secret, request.method, pairs)
        if not hmac.compare_digest(expected, request.param("Signature") or ""):
            raise EmulatorError("SignatureDoesNotMatch")
        self._check_token(key, request.param("SecurityToken"))
        self._check_fresh(request.param("Timestamp") or "", "Timestamp")
        self._check_nonce(access_key_id, request.param("SignatureNonce") or "")
        return key

    @staticmethod
    def _check_token(key: AccessKey, token: str | None) -> None:
        if key.expired:
            raise EmulatorError("InvalidSecurityToken.Expired")
        if key.security_token is None:
            return
        if token is None or not hmac.compare_digest(token, key.security_token):
            raise EmulatorError("InvalidSecurityToken.Expired")

    def _check_fresh(self, value: str, name: str) -> None:
        try:
            stamp = calendar.timegm(time.strptime(value, _DATE_FORMAT))
        except ValueError:
            raise EmulatorError(
                "InvalidTimeStamp.Expired", f"{name} {value!r} is not {_DATE_FORMAT}."
            ) from None
        if abs(self._clock() - stamp) > self._window:
            raise EmulatorError("InvalidTimeStamp.Expired", f"{name} {value} is more than 15 minutes off.")

    def _check_nonce(self, access_key_id: str, nonce: str) -> None:
        now = self._clock()
        while self._nonces and next(iter(self._nonces.values())) < now:
            self._nonces.popitem(last=False)
        scoped = f"{access_key_id}\0{nonce}"
        if scoped in self._nonces:
            raise EmulatorError("SignatureNonceUsed")
        self._nonces[scoped] = now + self._window


def _parse_authorization(value: str) -> tuple[str, str, list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep:
            raise EmulatorError("IncompleteSignature", "The Authorization header is malformed.")
        fields[name] = field_value
    try:
        return algorithm, fields["Credential"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError:
        raise EmulatorError("IncompleteSignature", "The Authorization header is malformed.") from None
