"""``ApiError``'s classification and throttling flag: the error table decides, never a header.

``x-acs-retry-after`` only says when to come back. It proves nothing about whether EMR acted: an
``InternalError`` that carries it may still have started the action, so resubmitting it could run
the action twice (issue 9, hole 5).
"""

from __future__ import annotations

import pytest

from emrops.acs.codes import TABLE, Classification, ErrorCode
from emrops.emr.errors import ApiError


def api_error(code: str, http_status: int, retry_after: float | None = None) -> ApiError:
    return ApiError(code=code, message="m", http_status=http_status, retry_after=retry_after)


def test_internal_error_with_retry_after_stays_ambiguous() -> None:
    error = api_error("InternalError", 500, retry_after=2.0)
    assert error.classification is Classification.AMBIGUOUS
    assert not error.throttling
    assert error.retry_after == 2.0  # still available as a delay hint


ROWS = sorted(TABLE.values(), key=lambda r: r.code)


@pytest.mark.parametrize("row", ROWS, ids=[r.code for r in ROWS])
def test_retry_after_changes_nothing_for_any_code_of_the_table(row: ErrorCode) -> None:
    bare, hinted = api_error(row.code, row.http_status), api_error(row.code, row.http_status, retry_after=3.0)
    assert hinted.classification is bare.classification is row.classification
    assert hinted.throttling is bare.throttling is row.throttling


@pytest.mark.parametrize(
    ("code", "status", "classification"),
    [
        ("SomethingNew", 400, Classification.TERMINAL),
        ("SomethingNew", 500, Classification.AMBIGUOUS),
        ("HTTP502", 502, Classification.AMBIGUOUS),
        ("HTTP403", 403, Classification.TERMINAL),
    ],
)
def test_unknown_codes_with_retry_after_keep_their_http_fallback(
    code: str, status: int, classification: Classification
) -> None:
    error = api_error(code, status, retry_after=1.5)
    assert error.classification is classification
    assert not error.throttling


def test_a_retryable_code_keeps_its_retry_after_as_the_backoff_floor() -> None:
    error = api_error("ServiceUnavailable", 503, retry_after=4.0)
    assert error.classification is Classification.RETRY
    assert not error.throttling  # EMR is down, not rate limiting us: the limiter is left alone
    assert error.retry_after == 4.0


@pytest.mark.parametrize(
    "code", ["Throttling", "Throttling.User", "ThrottlingException", "Rejected.Throttling"]
)
def test_throttling_codes_of_the_table_throttle_and_retry(code: str) -> None:
    for retry_after in (None, 40.0):
        error = api_error(code, 400, retry_after=retry_after)
        assert error.throttling
        assert error.classification is Classification.RETRY
        assert error.retry_after == retry_after


@pytest.mark.parametrize(
    ("code", "status"),
    [("Throttling.Api", 400), ("Throttling.System", 503), ("TooManyRequests", 429), ("HTTP429", 429)],
)
def test_unknown_codes_that_say_throttling_throttle_and_retry(code: str, status: int) -> None:
    error = api_error(code, status)
    assert error.throttling
    assert error.classification is Classification.RETRY
    assert error.reason == "Throttled"


@pytest.mark.parametrize(("code", "status"), [("Unthrottled", 400), ("QuotaExceeded", 400), ("HTTP400", 400)])
def test_other_unknown_codes_do_not_throttle(code: str, status: int) -> None:
    assert not api_error(code, status, retry_after=1.0).throttling
