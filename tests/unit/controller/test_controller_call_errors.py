"""The mapping from the client's exceptions to the machine's CallError, and credential naming."""

from __future__ import annotations

import pytest

from emrops.acs.codes import Classification
from emrops.controller.call_errors import call_error, describe_credentials, naming_credentials
from emrops.emr.errors import (
    ApiError,
    CredentialsError,
    OutcomeUnknownError,
    RequestNotSentError,
    ResponseError,
)


@pytest.mark.parametrize(
    ("exc", "classification", "code", "reason"),
    [
        (
            ApiError(code="Throttling.User", message="slow down", http_status=400),
            Classification.RETRY,
            "Throttling.User",
            "Throttled",
        ),
        (
            ApiError(code="ConcurrentModification", message="busy", http_status=400),
            Classification.RETRY,
            "ConcurrentModification",
            "ConcurrentModification",
        ),
        (
            ApiError(code="InternalError", message="oops", http_status=500),
            Classification.AMBIGUOUS,
            "InternalError",
            "OutcomeUnknown",
        ),
        (
            ApiError(code="NotAuthorized", message="no", http_status=400),
            Classification.TERMINAL,
            "NotAuthorized",
            "NotAuthorized",
        ),
        (
            ApiError(code="SomethingNew", message="?", http_status=502),
            Classification.AMBIGUOUS,
            "SomethingNew",
            "ServerError",
        ),
        (
            ApiError(code="SomethingNew", message="?", http_status=409),
            Classification.TERMINAL,
            "SomethingNew",
            "ApiError",
        ),
        (RequestNotSentError("connection refused"), Classification.RETRY, "RequestNotSent", "RequestNotSent"),
        (CredentialsError("no chain"), Classification.RETRY, "CredentialsUnavailable", "CredentialsMissing"),
        (OutcomeUnknownError("reset"), Classification.AMBIGUOUS, "OutcomeUnknown", "OutcomeUnknown"),
        (TimeoutError(), Classification.AMBIGUOUS, "OutcomeUnknown", "OutcomeUnknown"),
        (ResponseError("not json"), Classification.AMBIGUOUS, "InvalidResponse", "OutcomeUnknown"),
    ],
)
def test_call_error_classifies_every_exception_kind(
    exc: BaseException, classification: Classification, code: str, reason: str
) -> None:
    error = call_error(exc, timeout=5)
    assert (error.classification, error.code, error.reason) == (classification, code, reason)


def test_retry_after_is_only_a_delay_hint() -> None:
    # Issue 9, hole 5: the header made any error retryable, so an InternalError (which may have
    # started the action) was sent again. The error table decides; the hint stays a backoff floor.
    ambiguous = call_error(ApiError(code="InternalError", message="m", http_status=500, retry_after=1.5))
    assert ambiguous.classification is Classification.AMBIGUOUS
    assert not ambiguous.throttling and ambiguous.retry_after == 1.5
    unknown = call_error(ApiError(code="Whatever", message="m", http_status=400, retry_after=1.5))
    assert unknown.classification is Classification.TERMINAL and not unknown.throttling
    throttled = call_error(ApiError(code="Throttling.User", message="m", http_status=400, retry_after=40.0))
    assert throttled.classification is Classification.RETRY
    assert throttled.throttling and throttled.retry_after == 40.0


def test_a_timeout_says_how_long_we_waited() -> None:
    assert "within 7s" in call_error(TimeoutError(), timeout=7).message


def test_credential_errors_name_the_secret_and_the_key_tail_only() -> None:
    source = describe_credentials("LTAI5tExampleKeyIdWXYZ", "team-a/emr-creds")
    assert source == "Secret team-a/emr-creds (spec.credentialsSecretRef), accessKeyId ending in WXYZ"
    rejected = call_error(ApiError(code="IncompleteSignature", message="bad signature", http_status=400))
    named = naming_credentials(rejected, source)
    assert "Secret team-a/emr-creds" in named.guidance
    assert "LTAI5tExampleKeyId" not in named.guidance
    assert named.guidance.startswith(rejected.guidance)


def test_default_chain_and_short_key_ids() -> None:
    assert describe_credentials("short", None) == "the operator's default chain, its accessKeyId"


def test_errors_unrelated_to_credentials_are_left_alone() -> None:
    throttled = call_error(ApiError(code="Throttling", message="m", http_status=400))
    assert naming_credentials(throttled, "Secret a/b, accessKeyId ending in 1234") is throttled
    assert naming_credentials(throttled, None) is throttled


def test_only_the_table_s_read_lag_rows_may_be_read_after_write_lag() -> None:
    lagging = call_error(ApiError(code="ResourceNotFound", message="gone", http_status=404))
    assert lagging.read_lag
    for code, status in (("InvalidParameter", 400), ("NotAuthorized", 400), ("SomethingNew", 404)):
        assert not call_error(ApiError(code=code, message="x", http_status=status)).read_lag


def test_every_reason_emrops_writes_is_in_the_reason_enum() -> None:
    from emrops.acs.codes import TABLE
    from emrops.api.reasons import Reason

    assert {row.reason for row in TABLE.values()} <= {r.value for r in Reason}
