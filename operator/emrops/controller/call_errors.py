"""Turning the EMR client's exceptions into the machine's ``CallError`` (the one place that does)."""

from __future__ import annotations

import dataclasses

from emrops.acs.codes import Classification
from emrops.controller.machine import CallError
from emrops.emr.errors import (
    ApiError,
    CredentialsError,
    OutcomeUnknownError,
    RequestNotSentError,
    ResponseError,
)


def call_error(exc: BaseException, *, timeout: float | None = None) -> CallError:
    """What the state machine needs to know about a failed call.

    ``TimeoutError`` is our own ``asyncio.timeout`` around the call: the request may have been
    sent, so it is as ambiguous as a read timeout.
    """
    if isinstance(exc, ApiError):
        return CallError(
            classification=exc.classification,
            code=exc.code,
            message=exc.message,
            reason=exc.reason,
            guidance=exc.guidance,
            http_status=exc.http_status,
            request_id=exc.request_id,
            retry_after=exc.retry_after,
            throttling=exc.throttling,
            read_lag=exc.read_lag,
        )
    if isinstance(exc, RequestNotSentError):
        return CallError(Classification.RETRY, "RequestNotSent", str(exc), "RequestNotSent")
    if isinstance(exc, CredentialsError):
        # Raised before anything is sent: safe to try again once credentials are available.
        return CallError(Classification.RETRY, "CredentialsUnavailable", str(exc), "CredentialsMissing")
    if isinstance(exc, OutcomeUnknownError):
        return CallError(Classification.AMBIGUOUS, "OutcomeUnknown", str(exc), "OutcomeUnknown")
    if isinstance(exc, TimeoutError):
        waited = f" within {timeout:g}s" if timeout else ""
        return CallError(Classification.AMBIGUOUS, "OutcomeUnknown", f"no answer{waited}", "OutcomeUnknown")
    if isinstance(exc, ResponseError):
        return CallError(Classification.AMBIGUOUS, "InvalidResponse", str(exc), "OutcomeUnknown")
    return CallError(Classification.AMBIGUOUS, type(exc).__name__, str(exc), "OutcomeUnknown")


#: Condition reasons whose fix is in the credentials: their message names which ones were used.
CREDENTIAL_REASONS = frozenset({"CredentialsRejected", "NotAuthorized", "ClockSkew"})


def naming_credentials(error: CallError, source: str | None) -> CallError:
    """``error`` with guidance that says which credentials were used, when they are the problem.

    ``source`` names where they came from (a Secret, or the operator's default chain) and the
    AccessKey ID's last characters, never a secret or token.
    """
    if source is None or error.reason not in CREDENTIAL_REASONS:
        return error
    guidance = (
        f"{error.guidance} Credentials used: {source}." if error.guidance else f"Credentials used: {source}."
    )
    return dataclasses.replace(error, guidance=guidance)


def describe_credentials(access_key_id: str, secret_ref: str | None) -> str:
    """``Secret ns/name (accessKeyId ...WXYZ)`` or ``the operator's default chain (...)``."""
    tail = access_key_id[-4:] if len(access_key_id) > 8 else ""
    key = f"accessKeyId ending in {tail}" if tail else "its accessKeyId"
    where = (
        f"Secret {secret_ref} (spec.credentialsSecretRef)" if secret_ref else "the operator's default chain"
    )
    return f"{where}, {key}"
