"""The run state machine, transition by transition (tables in the style of ACK's requeue_test.go)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emrops.acs.codes import Classification
from emrops.api.status import (
    LastError,
    OperationStatus,
    Phase,
    ProgressStatus,
    RunStatus,
    format_time,
    format_time_precise,
)
from emrops.controller.backoff import Backoff
from emrops.controller.machine import (
    Accepted,
    Blocked,
    CallError,
    Context,
    Decision,
    Drop,
    Finish,
    Gate,
    Gates,
    Look,
    Nothing,
    Observation,
    OperationView,
    Policy,
    Poll,
    Polled,
    PollFailed,
    Refused,
    Retry,
    Stall,
    Submit,
    Wait,
    decide,
    exclusive,
    following,
    holds_cluster,
    needs_attention,
)
from emrops.emr.models import OperationState

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
CREATED = NOW - timedelta(minutes=1)
POLICY = Policy(
    backoff=Backoff(base=1.0, cap=60.0),
    poll_initial=2.0,
    poll_max=30.0,
    bounded_attempts=3,
    submit_grace=60.0,
    credentials_recheck=15.0,
    queue_recheck=30.0,
)


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def status(**fields: Any) -> RunStatus:
    base: dict[str, Any] = {"run": 1, "attempts": 0, "start_time": ago(60)}
    base.update(fields)
    return RunStatus(**base)


THROTTLED = CallError(
    Classification.RETRY, "Throttling.User", "slow down", "Throttled", http_status=400, throttling=True
)
THROTTLED_HINT = CallError(
    Classification.RETRY,
    "Throttling",
    "later",
    "Throttled",
    http_status=400,
    retry_after=40.0,
    throttling=True,
)
CONCURRENT = CallError(
    Classification.RETRY, "ConcurrentModification", "busy", "ConcurrentModification", http_status=400
)
UNAVAILABLE = CallError(
    Classification.RETRY, "ServiceUnavailable", "down", "ServiceUnavailable", http_status=503
)
NOT_SENT = CallError(Classification.RETRY, "RequestNotSent", "connection refused", "RequestNotSent")
ECM = CallError(Classification.RETRY_BOUNDED, "InvokeEcmError", "ecm", "InvokeEcmError", http_status=400)
INTERNAL = CallError(Classification.AMBIGUOUS, "InternalError", "boom", "OutcomeUnknown", http_status=500)
TIMEOUT = CallError(
    Classification.AMBIGUOUS, "OutcomeUnknown", "read timeout after sending", "OutcomeUnknown"
)
NOT_AUTHORIZED = CallError(
    Classification.TERMINAL,
    "NotAuthorized",
    "no permission",
    "NotAuthorized",
    guidance="Grant the RAM user emr:RunApplicationAction.",
    http_status=400,
    request_id="req-x",
)
MISSING = CallError(
    Classification.TERMINAL,
    "MissingParameter.NodeId",
    "You must specify nodeId.",
    "MissingParameter",
    http_status=400,
)


def op(state: str, **kw: Any) -> OperationView:
    return OperationView(operation_id="op-1", state=OperationState(state), **kw)


RUNNING = status(phase=Phase.RUNNING, attempts=1, operation_id="op-1", request_id="req-1", reason="Running")
FOLLOWED = RUNNING.evolve(
    phase=Phase.FAILED,
    reason="DeadlineExceeded",
    stalled=True,
    start_time=ago(200),
    operation=OperationStatus(state="IN_PROGRESS"),
)
SUBMITTING = status(phase=Phase.SUBMITTING, attempts=1, submitted_at=ago(5), reason="Submitting")


@dataclass(frozen=True)
class Case:
    name: str
    status: RunStatus
    observation: Observation
    kind: type[Decision]
    phase: Phase | None = None  # of the new status, when one is written
    reason: str | None = None
    after: float | None = None
    event: str | None = None
    attempts: int | None = None
    ctx: dict[str, Any] = field(default_factory=dict)
    check: Any = None  # extra assertions: fn(decision)


CASES = [
    # --- a new object ---------------------------------------------------------------------
    Case("new object that may go: check the gates, no acceptance write alone", RunStatus(), Look(), Gate),
    Case(
        "new object, gates open: its first write is the intent, acceptance included",
        RunStatus(),
        Gates(intent_id="i-1"),
        Submit,
        Phase.SUBMITTING,
        "Submitting",
        event="Submitting",
        attempts=1,
        check=lambda d: (
            d.status.run == 1
            and d.status.start_time == format_time_precise(NOW)
            and d.status.submitted_at == format_time_precise(NOW)
            and d.status.intent_id == "i-1"
        ),
    ),
    Case("pending, nothing in the way: check the gates", status(phase=Phase.PENDING), Look(), Gate),
    Case(
        "gates open: submit attempt 1",
        status(phase=Phase.PENDING),
        Gates(),
        Submit,
        Phase.SUBMITTING,
        "Submitting",
        event="Submitting",
        attempts=1,
        check=lambda d: d.status.submitted_at == format_time_precise(NOW),
    ),
    Case(
        "queued behind an earlier run",
        status(phase=Phase.PENDING),
        Gates(waiting_for=("ns/a",)),
        Wait,
        Phase.QUEUED,
        "Queued",
        30.0,
        "Queued",
        check=lambda d: d.status.waiting_for == ("ns/a",),
    ),
    Case(
        "still queued behind the same run: no write, no event",
        status(phase=Phase.QUEUED, waiting_for=("ns/a",), reason="Queued"),
        Gates(waiting_for=("ns/a",)),
        Wait,
        after=30.0,
        check=lambda d: d.status is None and d.event is None,
    ),
    Case(
        "queued, then free: submit",
        status(phase=Phase.QUEUED, waiting_for=("ns/a",)),
        Gates(),
        Submit,
        Phase.SUBMITTING,
        attempts=1,
        check=lambda d: d.status.waiting_for is None,
    ),
    Case(
        "credentials missing: Pending, recheck",
        status(phase=Phase.PENDING),
        Gates(credentials_problem="Secret ns/creds not found"),
        Wait,
        Phase.PENDING,
        "CredentialsMissing",
        15.0,
        "CredentialsMissing",
    ),
    # --- the call's answer ----------------------------------------------------------------
    Case(
        "accepted: Running with ids recorded at once",
        SUBMITTING,
        Accepted(
            run=1, attempt=1, operation_id="op-1", request_id="req-1", abn_instances=(("i-1", "core1-1"),)
        ),
        Wait,
        Phase.RUNNING,
        "Running",
        2.0,
        "Submitted",
        check=lambda d: (
            (d.status.operation_id, d.status.request_id, d.status.abn_instances[0].node_name, d.poll_interval)
            == ("op-1", "req-1", "core1-1", 2.0)
        ),
    ),
    Case(
        "accepted after another replica declared Unknown: the truth wins",
        status(phase=Phase.UNKNOWN, attempts=1, submitted_at=ago(120)),
        Accepted(run=1, attempt=1, operation_id="op-1"),
        Wait,
        Phase.RUNNING,
    ),
    Case(
        "a late answer for another attempt is dropped",
        status(phase=Phase.SUBMITTING, attempts=2, submitted_at=ago(1)),
        Accepted(run=1, attempt=1, operation_id="op-1"),
        Drop,
    ),
    Case(
        "throttled: back to Pending with backoff",
        SUBMITTING,
        Refused(1, 1, THROTTLED),
        Retry,
        Phase.PENDING,
        "Throttled",
        0.5,
        "Throttled",
        attempts=1,
        check=lambda d: (
            d.status.last_error.code == "Throttling.User"
            and d.status.next_attempt_at == format_time(NOW + timedelta(seconds=0.5))
        ),
    ),
    Case(
        "retry-after is a floor", SUBMITTING, Refused(1, 1, THROTTLED_HINT), Retry, Phase.PENDING, after=40.0
    ),
    Case(
        "concurrent modification retried",
        SUBMITTING,
        Refused(1, 1, CONCURRENT),
        Retry,
        Phase.PENDING,
        "ConcurrentModification",
        event="Retrying",
    ),
    Case("503 retried", SUBMITTING, Refused(1, 1, UNAVAILABLE), Retry, Phase.PENDING, "ServiceUnavailable"),
    Case(
        "unsent request retried", SUBMITTING, Refused(1, 1, NOT_SENT), Retry, Phase.PENDING, "RequestNotSent"
    ),
    Case(
        "backoff grows with attempts (ceiling 2**(n-1), jitter 0.5)",
        status(phase=Phase.SUBMITTING, attempts=4, submitted_at=ago(1)),
        Refused(1, 4, CONCURRENT),
        Retry,
        Phase.PENDING,
        after=4.0,
    ),
    Case(
        "backoff is capped",
        status(phase=Phase.SUBMITTING, attempts=30, submitted_at=ago(1)),
        Refused(1, 30, CONCURRENT),
        Retry,
        after=30.0,
    ),
    Case(
        "InvokeEcmError retried while under the bound",
        SUBMITTING,
        Refused(1, 1, ECM),
        Retry,
        Phase.PENDING,
        "InvokeEcmError",
    ),
    Case(
        "InvokeEcmError fails at the bound of InvokeEcmError attempts",
        status(phase=Phase.SUBMITTING, attempts=7, submitted_at=ago(1), bounded_errors=2),
        Refused(1, 7, ECM),
        Finish,
        Phase.FAILED,
        "InvokeEcmError",
        event="Failed",
        check=lambda d: "3 times in this run" in d.status.message,
    ),
    Case(
        "only InvokeEcmError attempts count toward its bound, not throttled ones",
        status(phase=Phase.SUBMITTING, attempts=5, submitted_at=ago(1), bounded_errors=1),
        Refused(1, 5, ECM),
        Retry,
        Phase.PENDING,
        "InvokeEcmError",
        check=lambda d: d.status.bounded_errors == 2,
    ),
    Case(
        "a throttled attempt leaves the InvokeEcmError count alone",
        status(phase=Phase.SUBMITTING, attempts=3, submitted_at=ago(1), bounded_errors=2),
        Refused(1, 3, THROTTLED),
        Retry,
        Phase.PENDING,
        check=lambda d: d.status.bounded_errors == 2,
    ),
    Case(
        "terminal error: Failed, message names the fix",
        SUBMITTING,
        Refused(1, 1, NOT_AUTHORIZED),
        Finish,
        Phase.FAILED,
        "NotAuthorized",
        event="Failed",
        check=lambda d: (
            "emr:RunApplicationAction" in d.status.message
            and d.status.stalled
            and d.status.last_error.request_id == "req-x"
        ),
    ),
    Case(
        "missing parameter: Failed",
        SUBMITTING,
        Refused(1, 1, MISSING),
        Finish,
        Phase.FAILED,
        "MissingParameter",
        check=lambda d: "nodeId" in d.status.message,
    ),
    Case(
        "500 InternalError: Unknown, no resubmit",
        SUBMITTING,
        Refused(1, 1, INTERNAL),
        Stall,
        Phase.UNKNOWN,
        "OutcomeUnknown",
        event="OutcomeUnknown",
        check=lambda d: "run-requested-at" in d.status.message,
    ),
    Case("timeout after sending: Unknown", SUBMITTING, Refused(1, 1, TIMEOUT), Stall, Phase.UNKNOWN),
    # --- found on (re)start ---------------------------------------------------------------
    Case(
        "Submitting, possibly in flight elsewhere: wait out the grace",
        SUBMITTING,
        Look(),
        Wait,
        after=55.0,
        check=lambda d: d.status is None,
    ),
    Case(
        "Submitting without operationId after the grace: Unknown",
        status(phase=Phase.SUBMITTING, attempts=1, submitted_at=ago(61)),
        Look(),
        Stall,
        Phase.UNKNOWN,
        "OutcomeUnknown",
    ),
    Case("Running: poll", RUNNING, Look(), Poll),
    Case(
        "Pending in backoff: wait for nextAttemptAt",
        status(phase=Phase.PENDING, attempts=1, next_attempt_at=format_time(NOW + timedelta(seconds=7))),
        Look(),
        Wait,
        after=7.0,
    ),
    Case(
        "Pending with backoff over: gate",
        status(phase=Phase.PENDING, attempts=1, next_attempt_at=ago(1)),
        Look(),
        Gate,
    ),
    Case("Succeeded and no re-run: nothing", status(phase=Phase.SUCCEEDED), Look(), Nothing),
    Case("Unknown stays Unknown", status(phase=Phase.UNKNOWN), Look(), Nothing),
    Case(
        "re-run value already handled: nothing",
        status(phase=Phase.FAILED, run_requested_at="v1"),
        Look(),
        Nothing,
        ctx={"rerun_value": "v1"},
    ),
    Case("re-run on a running object waits for the run", RUNNING, Look(), Poll, ctx={"rerun_value": "v2"}),
    Case(
        "re-run of a finished object: run 2, history kept",
        status(
            phase=Phase.UNKNOWN,
            attempts=1,
            submitted_at=ago(30),
            finished_at=ago(20),
            last_error=LastError(code="InternalError", message="boom"),
            run_requested_at=None,
        ),
        Look(),
        Wait,
        Phase.PENDING,
        "RerunRequested",
        0,
        "RerunRequested",
        attempts=0,
        ctx={"rerun_value": "2025-06-01T12:00:00Z"},
        check=lambda d: (
            (
                d.status.run,
                d.status.run_requested_at,
                d.status.operation_id,
                len(d.status.history),
                d.status.history[0].phase,
                d.status.history[0].error_code,
            )
            == (2, "2025-06-01T12:00:00Z", None, 1, "Unknown", "InternalError")
        ),
    ),
    # --- deadline -------------------------------------------------------------------------
    Case(
        "deadline passed while pending",
        status(phase=Phase.PENDING, start_time=ago(100)),
        Look(),
        Finish,
        Phase.FAILED,
        "DeadlineExceeded",
        ctx={"deadline_seconds": 90},
    ),
    Case(
        "deadline passed while running: poll once more before deciding",
        RUNNING.evolve(start_time=ago(100)),
        Look(),
        Poll,
        ctx={"deadline_seconds": 90},
    ),
    Case(
        "an operation that completed in the last interval is Succeeded, not DeadlineExceeded",
        RUNNING.evolve(start_time=ago(100)),
        Polled(op("COMPLETED")),
        Finish,
        Phase.SUCCEEDED,
        "Succeeded",
        ctx={"deadline_seconds": 90},
    ),
    Case(
        "still in progress at the deadline: Failed, and followed on slowly (holds the cluster)",
        RUNNING.evolve(start_time=ago(100)),
        Polled(op("IN_PROGRESS")),
        Wait,
        Phase.FAILED,
        "DeadlineExceeded",
        after=30.0,
        event="Failed",
        ctx={"deadline_seconds": 90},
        check=lambda d: (
            "op-1 may still be running" in d.status.message
            and d.status.operation.state == "IN_PROGRESS"
            and holds_cluster(d.status)
            and following(d.status)
        ),
    ),
    Case(
        "a poll error at the deadline cannot confirm the end: DeadlineExceeded",
        RUNNING.evolve(start_time=ago(100)),
        PollFailed(THROTTLED),
        Wait,
        Phase.FAILED,
        "DeadlineExceeded",
        ctx={"deadline_seconds": 90},
    ),
    Case(
        "a followed operation is polled again after the deadline",
        FOLLOWED,
        Look(),
        Poll,
        ctx={"deadline_seconds": 90},
    ),
    Case(
        "a followed operation that ended releases the cluster and stops the worker",
        FOLLOWED,
        Polled(op("COMPLETED")),
        Finish,
        Phase.FAILED,
        "DeadlineExceeded",
        event="OperationEnded",
        ctx={"deadline_seconds": 90},
        check=lambda d: not holds_cluster(d.status) and d.status.operation.state == "COMPLETED",
    ),
    Case(
        "a followed operation still running: no write, poll slowly, never capped to zero",
        FOLLOWED,
        Polled(op("IN_PROGRESS")),
        Wait,
        after=30.0,
        ctx={"deadline_seconds": 90},
        check=lambda d: d.status is None,
    ),
    Case(
        "waits never overshoot the deadline",
        status(phase=Phase.PENDING, start_time=ago(80)),
        Gates(waiting_for=("ns/a",)),
        Wait,
        Phase.QUEUED,
        after=10.0,
        ctx={"deadline_seconds": 90},
    ),
    # --- polling --------------------------------------------------------------------------
    Case(
        "completed: Succeeded",
        RUNNING,
        Polled(op("COMPLETED")),
        Finish,
        Phase.SUCCEEDED,
        "Succeeded",
        event="Succeeded",
        check=lambda d: d.status.operation.state == "COMPLETED" and d.status.finished_at,
    ),
    Case(
        "completed fills progress",
        RUNNING,
        Polled(op("COMPLETED"), ProgressStatus(total=4, done=2)),
        Finish,
        Phase.SUCCEEDED,
        check=lambda d: d.status.progress.done == 4,
    ),
    Case(
        "operation failed: Failed with EMR's reason",
        RUNNING,
        Polled(op("FAILED", reason_code="NodeFailure", reason_message="core1-2 down")),
        Finish,
        Phase.FAILED,
        "NodeFailure",
        event="Failed",
        check=lambda d: "core1-2 down" in d.status.message,
    ),
    Case(
        "in progress: first poll interval",
        RUNNING,
        Polled(op("IN_PROGRESS")),
        Wait,
        after=2.0,
        check=lambda d: d.status.operation.state == "IN_PROGRESS",
    ),
    Case(
        "in progress: interval doubles",
        RUNNING,
        Polled(op("IN_PROGRESS")),
        Wait,
        after=16.0,
        ctx={"poll_interval": 8.0},
    ),
    Case(
        "in progress: interval capped",
        RUNNING,
        Polled(op("IN_PROGRESS")),
        Wait,
        after=30.0,
        ctx={"poll_interval": 20.0},
    ),
    Case(
        "progress changed: Progress event",
        RUNNING,
        Polled(op("IN_PROGRESS"), ProgressStatus(total=12, done=4, message="4 of 12 instances done")),
        Wait,
        Phase.RUNNING,
        "Running",
        event="Progress",
        check=lambda d: "4 of 12" in d.status.message,
    ),
    Case(
        "HUMAN_PROCESSING: Running but Stalled, slow polling",
        RUNNING,
        Polled(op("HUMAN_PROCESSING", reason_code="NodeFailure")),
        Wait,
        Phase.RUNNING,
        "HumanProcessing",
        30.0,
        "HumanProcessing",
        check=lambda d: d.status.stalled,
    ),
    Case(
        "out of HUMAN_PROCESSING: Reconciling again",
        RUNNING.model_copy(update={"reason": "HumanProcessing", "stalled": True}),
        Polled(op("IN_PROGRESS")),
        Wait,
        Phase.RUNNING,
        "Running",
        event="Running",
        check=lambda d: not d.status.stalled,
    ),
    Case(
        "poll throttled: keep Running, back off",
        RUNNING,
        PollFailed(THROTTLED_HINT),
        Retry,
        Phase.RUNNING,
        after=40.0,
        event="Throttled",
    ),
    Case(
        "poll cannot be authorized: Running + Stalled",
        RUNNING,
        PollFailed(NOT_AUTHORIZED),
        Wait,
        Phase.RUNNING,
        "NotAuthorized",
        30.0,
        check=lambda d: d.status.stalled,
    ),
    Case(
        "a poll result after the run ended is dropped",
        status(phase=Phase.SUCCEEDED, operation_id="op-1"),
        Polled(op("IN_PROGRESS")),
        Drop,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transition(case: Case) -> None:
    ctx = Context(status=case.status, now=NOW, created_at=CREATED, jitter=0.5, policy=POLICY, **case.ctx)
    decision = decide(ctx, case.observation)
    assert type(decision) is case.kind, decision
    new = decision.status
    if case.phase is not None:
        assert new is not None and new.phase is case.phase
    if case.reason is not None:
        assert new is not None and new.reason == case.reason
    if case.attempts is not None:
        assert new is not None and new.attempts == case.attempts
    if case.after is not None:
        assert isinstance(decision, Wait)
        assert decision.after == pytest.approx(case.after)
    if case.event is not None:
        assert decision.event is not None and decision.event.reason == case.event
    if case.check is not None:
        assert case.check(decision)


def test_only_one_path_leads_to_a_call() -> None:
    """No observation but Gates() on a Pending/Queued object yields Submit."""
    observations: list[Observation] = [
        Look(),
        Gates(),
        Gates(waiting_for=("x",)),
        Accepted(1, 1, "op-1"),
        Refused(1, 1, THROTTLED),
        Polled(op("IN_PROGRESS")),
    ]
    for phase in [None, *Phase]:
        for obs in observations:
            st = status(phase=phase, attempts=1, submitted_at=ago(120))
            decision = decide(Context(status=st, now=NOW, created_at=CREATED, policy=POLICY), obs)
            if isinstance(decision, Submit):
                assert obs == Gates() and phase in (None, Phase.PENDING, Phase.QUEUED)


def test_full_run_walkthrough() -> None:
    """(new) -> Submitting -> (throttled) Pending -> Submitting -> Running -> Succeeded."""
    st = RunStatus()
    steps: list[tuple[Observation, type[Decision]]] = [
        (Look(), Gate),
        (Gates(), Submit),
        (Refused(1, 1, THROTTLED), Retry),
        (Gates(), Submit),
        (Accepted(1, 2, "op-1", "req-1"), Wait),
        (Look(), Poll),
        (Polled(op("IN_PROGRESS")), Wait),
        (Polled(op("COMPLETED")), Finish),
        (Look(), Nothing),
    ]
    for obs, kind in steps:
        decision = decide(Context(status=st, now=NOW, created_at=CREATED, policy=POLICY), obs)
        assert type(decision) is kind, (obs, decision)
        if decision.status is not None:
            st = decision.status
    assert st.phase is Phase.SUCCEEDED and st.attempts == 2 and st.operation_id == "op-1"
    assert st.last_error is not None and st.last_error.code == "Throttling.User"
    assert st.run == 1 and st.start_time == format_time_precise(NOW)


def test_history_is_bounded() -> None:
    st = status(phase=Phase.SUCCEEDED, operation_id="op-0", run=1)
    for n in range(2, 15):
        decision = decide(
            Context(status=st, now=NOW, created_at=CREATED, policy=POLICY, rerun_value=f"v{n}"), Look()
        )
        assert decision.status is not None
        st = decision.status.model_copy(update={"phase": Phase.SUCCEEDED})
    assert st.run == 14
    assert st.history is not None and len(st.history) == 10
    assert [h.run for h in st.history] == list(range(4, 14))


def test_polling_writes_only_when_something_changed() -> None:
    first = decide(
        Context(status=RUNNING, now=NOW, created_at=CREATED, policy=POLICY), Polled(op("IN_PROGRESS"))
    )
    assert first.status is not None
    again = decide(
        Context(status=first.status, now=NOW, created_at=CREATED, policy=POLICY, poll_interval=2.0),
        Polled(op("IN_PROGRESS")),
    )
    assert isinstance(again, Wait) and again.status is None and again.event is None and again.after == 4.0


# --- the holes of issue 9, one table each ---------------------------------------------------

NOT_FOUND = CallError(
    Classification.TERMINAL,
    "ResourceNotFound",
    "no such operation",
    "ResourceNotFound",
    http_status=404,
    read_lag=True,
)


def ctx_of(st: RunStatus, **kw: Any) -> Context:
    return Context(status=st, now=NOW, created_at=CREATED, jitter=0.5, policy=POLICY, **kw)


@pytest.mark.parametrize(
    ("accepted_ago", "kind"),
    [(1, Retry), (29, Retry), (31, Stall)],
    ids=["just accepted", "inside the grace", "past the grace"],
)
def test_get_operation_not_found_right_after_submit_is_read_after_write_lag(
    accepted_ago: float, kind: type[Decision]
) -> None:
    st = RUNNING.evolve(submitted_at=ago(accepted_ago))
    decision = decide(ctx_of(st), PollFailed(NOT_FOUND))
    assert type(decision) is kind
    if kind is Stall:
        assert decision.status is not None and decision.status.reason == "OperationNotFound"
    else:
        assert decision.status is not None and decision.status.phase is Phase.RUNNING


UNKNOWN = status(phase=Phase.UNKNOWN, operation_id=None, reason="OutcomeUnknown", stalled=True, run=1)


@pytest.mark.parametrize(
    ("st", "holds", "excl"),
    [
        (RunStatus(), True, False),
        (status(phase=Phase.PENDING), True, False),
        (status(phase=Phase.PENDING, reason="CredentialsMissing"), False, False),
        (status(phase=Phase.QUEUED), True, False),
        (SUBMITTING, True, True),
        (RUNNING, True, True),
        (status(phase=Phase.SUCCEEDED), False, False),
        (status(phase=Phase.FAILED, reason="NotAuthorized"), False, False),
        (UNKNOWN, True, True),
        (UNKNOWN.evolve(acknowledged_at="x", acknowledged_run=1), False, False),
        (UNKNOWN.evolve(run=2, acknowledged_at="x", acknowledged_run=1), True, True),
        (FOLLOWED, True, True),
        (FOLLOWED.evolve(operation=OperationStatus(state="COMPLETED")), False, False),
        (FOLLOWED.evolve(acknowledged_at="x", acknowledged_run=1), False, False),
    ],
    ids=[
        "new",
        "pending",
        "pending without credentials",
        "queued",
        "submitting",
        "running",
        "succeeded",
        "failed",
        "unknown",
        "unknown, acknowledged",
        "unknown run 2, run 1 was acknowledged",
        "followed past its deadline",
        "followed operation ended",
        "followed, acknowledged",
    ],
)
def test_what_holds_the_cluster(st: RunStatus, holds: bool, excl: bool) -> None:
    assert holds_cluster(st) is holds
    assert exclusive(st) is excl


def test_an_acknowledgement_releases_an_unknown_run_and_is_taken_once() -> None:
    assert needs_attention(UNKNOWN, None, None) is False
    assert needs_attention(UNKNOWN, None, "checked") is True
    decision = decide(ctx_of(UNKNOWN, ack_value="checked"), Look())
    assert isinstance(decision, Finish) and decision.event is not None
    released = decision.status
    assert released is not None and released.phase is Phase.UNKNOWN
    assert released.acknowledged_at == "checked" and not holds_cluster(released)
    assert needs_attention(released, None, "checked") is False
    assert isinstance(decide(ctx_of(released, ack_value="checked"), Look()), Nothing)


def test_an_old_acknowledgement_never_releases_a_new_run() -> None:
    released = UNKNOWN.evolve(acknowledged_at="v1", acknowledged_run=1, run_requested_at=None)
    rerun = decide(ctx_of(released, rerun_value="again", ack_value="v1"), Look())
    assert isinstance(rerun, Wait) and rerun.status is not None
    run2 = rerun.status
    assert run2.run == 2 and run2.acknowledged_at == "v1"
    unknown2 = run2.evolve(phase=Phase.UNKNOWN, reason="OutcomeUnknown", stalled=True)
    assert holds_cluster(unknown2) and not needs_attention(unknown2, "again", "v1")
    assert needs_attention(unknown2, "again", "v2")


def test_an_acknowledgement_while_running_waits_for_the_run_to_end() -> None:
    assert isinstance(decide(ctx_of(RUNNING, ack_value="early"), Look()), Poll)


def test_a_withdrawn_intent_goes_back_to_the_queue_as_if_never_written() -> None:
    intent = status(phase=Phase.SUBMITTING, attempts=2, submitted_at=ago(0), reason="Submitting")
    decision = decide(ctx_of(intent), Blocked(1, 2, waiting_for=("ns/older",)))
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.phase is Phase.QUEUED and decision.status.attempts == 1
    assert decision.status.submitted_at is None and decision.status.waiting_for == ("ns/older",)
    assert decision.event is not None and decision.event.reason == "Queued"


def test_an_intent_withdrawn_for_another_reason_retries_after_a_backoff() -> None:
    intent = status(phase=Phase.SUBMITTING, attempts=1, submitted_at=ago(0), reason="Submitting")
    decision = decide(ctx_of(intent), Blocked(1, 1, why="the operator is shutting down"))
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.phase is Phase.PENDING and decision.status.attempts == 0
    assert decision.status.next_attempt_at is not None and "shutting down" in (decision.status.message or "")


@pytest.mark.parametrize(
    "st",
    [
        status(phase=Phase.SUBMITTING, attempts=2, submitted_at=ago(0)),  # another attempt
        RUNNING,  # the call was made after all (another replica)
        status(phase=Phase.QUEUED, attempts=0),
    ],
    ids=["another attempt", "running", "queued"],
)
def test_a_stale_withdrawal_is_dropped(st: RunStatus) -> None:
    assert isinstance(decide(ctx_of(st), Blocked(1, 1, waiting_for=("ns/a",))), Drop)


def test_credentials_are_checked_before_the_queue() -> None:
    decision = decide(
        ctx_of(status(phase=Phase.PENDING)), Gates(waiting_for=("ns/a",), credentials_problem="no")
    )
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.reason == "CredentialsMissing" and not holds_cluster(decision.status)


def test_evolve_refuses_a_field_that_does_not_exist() -> None:
    with pytest.raises(TypeError, match="phse"):
        RUNNING.evolve(**{"phse": Phase.FAILED})  # type: ignore[arg-type]


# --- found by the simulation (seeds named in the test ids) -----------------------------------


def test_an_in_progress_answer_sent_before_the_deadline_does_not_decide_it() -> None:
    """Seed 1583: a poll sent before the deadline, answered (with its progress listing) after it."""
    st = RUNNING.evolve(start_time=ago(100))
    early = decide(
        ctx_of(st, deadline_seconds=90), Polled(op("IN_PROGRESS"), sent_at=NOW - timedelta(seconds=15))
    )
    assert isinstance(early, Poll)
    late = decide(
        ctx_of(st, deadline_seconds=90), Polled(op("IN_PROGRESS"), sent_at=NOW - timedelta(seconds=5))
    )
    assert isinstance(late, Wait) and late.status is not None and late.status.reason == "DeadlineExceeded"


def test_read_after_write_lag_is_judged_when_the_poll_was_sent() -> None:
    """Seed 4555: a poll sent inside the grace, its 404 answered after the grace."""
    st = RUNNING.evolve(submitted_at=ago(40))
    sent_in_grace = PollFailed(NOT_FOUND, sent_at=NOW - timedelta(seconds=15))
    assert isinstance(decide(ctx_of(st), sent_in_grace), Retry)
    assert isinstance(decide(ctx_of(st), PollFailed(NOT_FOUND, sent_at=NOW)), Stall)


def test_a_refusal_recorded_once_is_not_counted_again() -> None:
    """Seed 9399: the write recording a refusal landed but its answer was lost; it was re-applied."""
    intent = status(phase=Phase.SUBMITTING, attempts=2, submitted_at=ago(1), bounded_errors=1)
    first = decide(ctx_of(intent), Refused(1, 2, ECM))
    assert isinstance(first, Retry) and first.status is not None and first.status.bounded_errors == 2
    assert isinstance(decide(ctx_of(first.status), Refused(1, 2, ECM)), Drop)
