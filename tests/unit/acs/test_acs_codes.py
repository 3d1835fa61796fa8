"""The error table's rules that the controller's exactly-once promise rests on."""

from __future__ import annotations

import re

import pytest

from emrops.acs.codes import TABLE, Classification, ErrorCode, classify, is_throttling, lookup
from emrops.emr.errors import ApiError


def test_signature_nonce_used_is_ambiguous() -> None:
    """emrops signs every attempt with a fresh nonce, so a used nonce means a copy of this very
    request (a proxy's or the HTTP stack's resend) already reached EMR: it may have run."""
    row = lookup("SignatureNonceUsed")
    assert row is not None
    assert row.classification is Classification.AMBIGUOUS
    assert not row.throttling
    assert "already reached EMR" in row.guidance
    assert "emrops.io/run-requested-at" in row.guidance
    assert "emrops retries" not in row.guidance  # the old promise: retrying is what is unsafe
    error = ApiError(code="SignatureNonceUsed", message="m", http_status=400, retry_after=1.0)
    assert error.classification is Classification.AMBIGUOUS


def test_every_row_that_may_have_acted_tells_how_to_check_and_rerun() -> None:
    for row in TABLE.values():
        if row.classification is Classification.AMBIGUOUS:
            assert "EMR console" in row.guidance and "emrops.io/run-requested-at" in row.guidance, row.code


def test_rows_take_named_fields_only() -> None:
    """Reason, message and guidance are all strings: a positional row could swap them unnoticed."""
    with pytest.raises(TypeError):
        ErrorCode("X", 400, Classification.TERMINAL, "X", "A message.", "Guidance.")  # type: ignore[call-arg]


def test_reasons_are_identifiers_and_messages_are_sentences() -> None:
    """A swapped reason and message would show a sentence as a condition reason."""
    for row in TABLE.values():
        assert re.fullmatch(r"[A-Z][A-Za-z]+", row.reason), row.code
        assert " " in row.message and row.message.rstrip().endswith((".", "%s")), row.code
        assert " " in row.guidance and row.guidance.endswith("."), row.code


def test_throttling_rows_are_retryable() -> None:
    """A throttled request was refused before EMR did anything: it is always safe to send again."""
    for row in TABLE.values():
        if row.throttling:
            assert row.classification is Classification.RETRY, row.code
            assert is_throttling(row.code, row.http_status), row.code


@pytest.mark.parametrize(
    ("code", "status", "throttling", "classification"),
    [
        # Codes the table does not list: throttling by HTTP 429 or by name, else the status decides.
        ("Throttling.Api", 400, True, Classification.RETRY),
        ("Throttling.System", 503, True, Classification.RETRY),
        ("TooManyRequests", 429, True, Classification.RETRY),
        ("HTTP429", 429, True, Classification.RETRY),
        ("QuotaExceeded", 400, False, Classification.TERMINAL),
        ("Whatever", 500, False, Classification.AMBIGUOUS),
        (None, None, False, Classification.TERMINAL),
        # Codes the table lists: their row decides, whatever the status says.
        ("InternalError", 500, False, Classification.AMBIGUOUS),
        ("ServiceUnavailable", 503, False, Classification.RETRY),
        ("Throttling.User", 400, True, Classification.RETRY),
        ("ResourceNotFound", 429, False, Classification.TERMINAL),
    ],
)
def test_classify_and_is_throttling(
    code: str | None, status: int | None, throttling: bool, classification: Classification
) -> None:
    assert is_throttling(code, status) is throttling
    assert classify(code, status) is classification
