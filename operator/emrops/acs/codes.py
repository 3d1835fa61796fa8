"""The EMR error-code table: one row per code, used by every layer.

The client classifies errors with it, the controller decides retries from it, the emulator renders
error bodies from it, and the troubleshooting docs are generated from it. Rows come from the
RunApplicationAction API page (the "seed" codes) plus the gateway codes that Alibaba Cloud's
signature checks answer with.

Classification (docs/troubleshooting.md, generated from this table):

- ``RETRY``: EMR provably did nothing; retry with backoff.
- ``RETRY_BOUNDED``: probably transient, retry a bounded number of times, then fail.
- ``AMBIGUOUS``: the action may have run; never resubmit on our own.
- ``TERMINAL``: nothing was done and retrying cannot help; the user must change something.

Unknown codes fall back on their HTTP status: 4xx terminal, 5xx ambiguous; except that an unknown
code that says it is throttling (HTTP 429, or "Throttling" in the code, like the gateway's
``Throttling.*`` family) is retried, because a throttled request is refused before anything runs.

EMR's ``x-acs-retry-after`` header plays no part here: it says when to come back, not whether EMR
acted (an ``InternalError`` may carry it), so it is only ever a delay hint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Classification(enum.Enum):
    RETRY = "retry"
    RETRY_BOUNDED = "retry-bounded"
    AMBIGUOUS = "ambiguous"
    TERMINAL = "terminal"


@dataclass(frozen=True, kw_only=True)
class ErrorCode:
    """One row of the table, built with named fields only (``kw_only``): three of them are strings
    that read alike, and a positional row could swap ``reason`` and ``message`` unnoticed.

    ``message`` is EMR's template (``%s`` filled by whoever raises it); ``reason`` is the
    CamelCase condition reason and Event reason emrops uses; ``guidance`` tells the user what to do.
    ``read_lag`` marks a "does not exist" that EMR may answer for a resource it created moments
    ago (read-after-write lag): reading an operation just accepted, emrops reads it again for a
    while before it concludes the operation is gone.
    """

    code: str
    http_status: int
    classification: Classification
    reason: str
    message: str
    guidance: str
    throttling: bool = False
    seed: bool = True
    read_lag: bool = False


_THROTTLE_MSG = "The request was denied due to request throttling. %s"
_THROTTLE_HELP = (
    "emrops retries with backoff and slows its client-side rate limiter; if it persists, lower "
    "the operator's --rate-limit-qps or raise the EMR API quota in Quota Center."
)


def _throttled(code: str, *, seed: bool) -> ErrorCode:
    """A throttling row: refused before anything ran, so always retried (one message, one help)."""
    return ErrorCode(
        code=code,
        http_status=400,
        classification=Classification.RETRY,
        reason="Throttled",
        message=_THROTTLE_MSG,
        guidance=_THROTTLE_HELP,
        throttling=True,
        seed=seed,
    )


_PARAM_HELP = "Fix the named field of the ServiceAction spec and create a new ServiceAction."

_ROWS: tuple[ErrorCode, ...] = (
    ErrorCode(
        code="ConcurrentModification",
        http_status=400,
        classification=Classification.RETRY,
        reason="ConcurrentModification",
        message=(
            "The request on %s failed due to multiple requests to change this object were submitted "
            "simultaneously. Wait a few minutes and try again."
        ),
        guidance="Another operation is changing the same services; emrops waits and retries with backoff.",
    ),
    ErrorCode(
        code="InvalidParameter.InvalidRunActionScope",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="InvalidParameter",
        message="The specified run action scope is invalid.",
        guidance=(
            "spec.componentInstanceSelector.runActionScope must be APPLICATION, COMPONENT or "
            "COMPONENT_INSTANCE."
        ),
    ),
    ErrorCode(
        code="MissingParameter.ComponentInstance",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="You must specify componentInstance.",
        guidance=(
            "With runActionScope COMPONENT_INSTANCE, list the instances in "
            "spec.componentInstanceSelector.componentInstances."
        ),
    ),
    ErrorCode(
        code="MissingParameter.NodeId",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="You must specify nodeId.",
        guidance="Give every entry of spec.componentInstanceSelector.componentInstances a nodeId.",
    ),
    ErrorCode(
        code="MissingParameter.ComponentName",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="You must specify componentName.",
        guidance=(
            "Give every component (or component instance) of spec.componentInstanceSelector a componentName."
        ),
    ),
    ErrorCode(
        code="MissingParameter.ApplicationName",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="You must specify applicationName.",
        guidance=(
            "Set spec.componentInstanceSelector.applicationName (and applicationName on each "
            "component or instance)."
        ),
    ),
    ErrorCode(
        code="MissingParameter.NodeGroupId",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="You must specify nodeGroupId.",
        guidance=_PARAM_HELP,
    ),
    ErrorCode(
        code="InvokeEcmError",
        http_status=400,
        classification=Classification.RETRY_BOUNDED,
        reason="InvokeEcmError",
        message="An error occurred while invoking ECM service.",
        guidance=(
            "EMR's internal cluster manager failed; emrops retries a few times, then fails. If it "
            "persists, check the cluster's health in the EMR console."
        ),
    ),
    ErrorCode(
        code="ConflictParameters",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="ConflictParameters",
        message="Parameters that must not be used together. %s",
        guidance=_PARAM_HELP,
    ),
    ErrorCode(
        code="IncompleteSignature",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="CredentialsRejected",
        message="The request signature is invalid.",
        guidance=(
            "The accessKeySecret does not match the accessKeyId: fix the keys in the credentials "
            "Secret (or the operator's credentials)."
        ),
    ),
    ErrorCode(
        code="InvalidAction",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="InvalidAction",
        message="The action %s requested is invalid.",
        guidance="The endpoint does not serve this API version; check the operator's --emr-endpoint.",
    ),
    ErrorCode(
        code="InvalidParameter",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="InvalidParameter",
        message="The specified parameter %s is not valid.",
        guidance=_PARAM_HELP,
    ),
    ErrorCode(
        code="InvalidParameterValue",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="InvalidParameter",
        message="The input parameter %s is invalid or out of range.",
        guidance=_PARAM_HELP,
    ),
    ErrorCode(
        code="MissingAction",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="InvalidAction",
        message="The action %s requested is missing.",
        guidance="The request named no API action; this is a client bug, please report it.",
    ),
    ErrorCode(
        code="MissingParameter",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="MissingParameter",
        message="The input parameter %s that is mandatory for processing this request is not supplied.",
        guidance=_PARAM_HELP,
    ),
    ErrorCode(
        code="NotAuthorized",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="NotAuthorized",
        message="You do not have permission to perform this action. %s",
        guidance=(
            "Grant the RAM user or role behind these credentials emr:RunApplicationAction and "
            "emr:GetOperation on this cluster."
        ),
    ),
    _throttled("ThrottlingException", seed=True),
    ErrorCode(
        code="ResourceNotFound",
        http_status=404,
        classification=Classification.TERMINAL,
        reason="ResourceNotFound",
        message="The resource not found by %s.",
        guidance=(
            "Check spec.regionId, spec.clusterId and the application, component and node names "
            "against the cluster."
        ),
        read_lag=True,
    ),
    ErrorCode(
        code="InternalError",
        http_status=500,
        classification=Classification.AMBIGUOUS,
        reason="OutcomeUnknown",
        message="The request processing has failed due to some unknown error, exception or failure.",
        guidance=(
            "EMR may or may not have started the action. Check the cluster's operations in the EMR "
            "console, then set the emrops.io/run-requested-at annotation to run again if nothing ran."
        ),
    ),
    ErrorCode(
        code="ServiceFailure",
        http_status=503,
        classification=Classification.RETRY,
        reason="ServiceUnavailable",
        message="The request has failed due to a temporary failure of %s service.",
        guidance="EMR is temporarily unavailable; emrops retries with backoff.",
    ),
    ErrorCode(
        code="ServiceUnavailable",
        http_status=503,
        classification=Classification.RETRY,
        reason="ServiceUnavailable",
        message="The request has failed due to a temporary failure of the server.",
        guidance="EMR is temporarily unavailable; emrops retries with backoff.",
    ),
    # Gateway codes shared by all Alibaba Cloud APIs (not on the RunApplicationAction page).
    _throttled("Throttling", seed=False),
    _throttled("Throttling.User", seed=False),
    _throttled("Rejected.Throttling", seed=False),
    ErrorCode(
        code="SignatureDoesNotMatch",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="CredentialsRejected",
        message="The request signature does not conform to Alibaba Cloud standards.",
        guidance=(
            "The accessKeySecret does not match the accessKeyId: fix the keys in the credentials "
            "Secret (or the operator's credentials)."
        ),
        seed=False,
    ),
    ErrorCode(
        code="InvalidAccessKeyId.NotFound",
        http_status=404,
        classification=Classification.TERMINAL,
        reason="CredentialsRejected",
        message="Specified access key is not found.",
        guidance="The accessKeyId is unknown to Alibaba Cloud: fix the credentials Secret.",
        seed=False,
    ),
    ErrorCode(
        code="InvalidSecurityToken.Expired",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="CredentialsRejected",
        message="Specified SecurityToken is expired.",
        guidance=(
            "The STS securityToken has expired: refresh it in the credentials Secret, or use RRSA "
            "so the operator refreshes it."
        ),
        seed=False,
    ),
    ErrorCode(
        code="InvalidTimeStamp.Expired",
        http_status=400,
        classification=Classification.TERMINAL,
        reason="ClockSkew",
        message="Specified time stamp or date value is expired. %s",
        guidance=(
            "The request's x-acs-date is more than 15 minutes off: fix the clock of the operator's "
            "node (NTP)."
        ),
        seed=False,
    ),
    # Ambiguous, not retryable: emrops signs every attempt with a fresh nonce, so a used nonce
    # means this very request arrived twice (resent by a proxy or the network stack) and the
    # other copy may have run. The gateway refusing this copy says nothing about that one.
    ErrorCode(
        code="SignatureNonceUsed",
        http_status=400,
        classification=Classification.AMBIGUOUS,
        reason="NonceReused",
        message="Specified signature nonce was used already.",
        guidance=(
            "emrops signs every attempt with a fresh nonce, so another copy of this same signed "
            "request (resent on the way, e.g. by a proxy) already reached EMR and may have started "
            "the action. Check the cluster's operations in the EMR console, then set the "
            "emrops.io/run-requested-at annotation to run again if nothing ran."
        ),
        seed=False,
    ),
)

TABLE: dict[str, ErrorCode] = {row.code: row for row in _ROWS}


def lookup(code: str) -> ErrorCode | None:
    """The row for ``code``, or None when EMR answered with a code we do not know."""
    return TABLE.get(code)


def is_throttling(code: str | None, http_status: int | None) -> bool:
    """Whether EMR refused the call for its rate: by the code's row when known.

    A code the table does not list counts only when it says so itself: HTTP 429, or "Throttling"
    in the code (Alibaba Cloud grows the ``Throttling.*`` family per product). Anything vaguer
    (a retry-after header, a 503) would slow the shared rate limiter for errors that are not about
    our rate at all.
    """
    row = TABLE.get(code or "")
    if row is not None:
        return row.throttling
    return http_status == 429 or "Throttling" in (code or "")


def classify(code: str | None, http_status: int | None) -> Classification:
    """How to treat an error: by its code when known, else by its HTTP status."""
    row = TABLE.get(code or "")
    if row is not None:
        return row.classification
    if is_throttling(code, http_status):
        return Classification.RETRY  # refused before anything ran, whatever the status
    if http_status is not None and http_status >= 500:
        return Classification.AMBIGUOUS
    return Classification.TERMINAL
