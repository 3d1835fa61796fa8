"""Errors raised by the EMR client.

::

    EmrError                      anything that went wrong talking to EMR
    +-- TransportError            no usable HTTP response
    |   +-- RequestNotSentError   provably never reached EMR (connect refused, DNS): safe to retry
    |   +-- OutcomeUnknownError   sent, then timeout / connection lost: EMR may have acted
    +-- ApiError                  EMR answered with an error body (code, request id, status)
    +-- ResponseError             EMR answered 2xx with a body we cannot parse

``CredentialsError`` (credentials could not be obtained) is not an ``EmrError``: nothing was sent.
Misuse of the client (bad arguments) raises ``ValueError``/``TypeError`` as usual.

Every message is built from EMR's code and message and the request id; never from request
headers or parameters that could carry a secret or token.
"""

from __future__ import annotations

from emrops.acs.codes import Classification, classify, is_throttling, lookup


class EmrError(Exception):
    """Base of every error from talking to EMR."""

    @property
    def classification(self) -> Classification:
        return Classification.AMBIGUOUS


class TransportError(EmrError):
    """No usable HTTP response arrived."""


class RequestNotSentError(TransportError):
    """The request never reached EMR (connection refused, DNS failure): retrying is safe."""

    @property
    def classification(self) -> Classification:
        return Classification.RETRY


class OutcomeUnknownError(TransportError):
    """The request was sent but no answer came back (timeout, reset): EMR may have acted."""


class ResponseError(EmrError):
    """EMR answered 2xx with a body that is not the expected JSON."""


class ApiError(EmrError):
    """EMR answered with an error body.

    ``retry_after`` is EMR's ``x-acs-retry-after`` hint in seconds, when it sent one: only a delay
    (callers never come back sooner when they retry), never a reason to retry.
    """

    def __init__(
        self,
        *,
        code: str,
        message: str,
        http_status: int,
        request_id: str | None = None,
        retry_after: float | None = None,
        action: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after = retry_after
        self.action = action
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.code} (HTTP {self.http_status}): {self.message}"
        if self.request_id:
            text += f" [RequestId {self.request_id}]"
        return text

    @property
    def classification(self) -> Classification:
        # From the error table only. ``retry_after`` proves nothing: EMR may send it with an
        # InternalError that has already started the action, and retrying that runs it twice.
        return classify(self.code, self.http_status)

    @property
    def throttling(self) -> bool:
        # The table's row (or, for a code it does not list, HTTP 429 / a "Throttling" code), not
        # the header: a retry-after on a 503 must not slow the rate limiter every run shares.
        return is_throttling(self.code, self.http_status)

    @property
    def reason(self) -> str:
        """CamelCase reason for conditions and Events."""
        row = lookup(self.code)
        if row is not None:
            return row.reason
        if self.throttling:
            return "Throttled"  # the reason of the table's throttling rows
        return "ServerError" if self.http_status >= 500 else "ApiError"

    @property
    def read_lag(self) -> bool:
        """Whether this "not found" may be EMR's read-after-write lag (see the error table)."""
        row = lookup(self.code)
        return row is not None and row.read_lag

    @property
    def guidance(self) -> str:
        row = lookup(self.code)
        return row.guidance if row is not None else ""


class CredentialsError(Exception):
    """Credentials could not be obtained (missing Secret key, failed STS exchange, ...)."""
