"""The run state machine: from what we know of one ServiceAction, what to do next.

Pure: no kopf, no httpx, no clock, no randomness, no I/O. ``decide(ctx, observation)`` takes the
object as last read (``Context``: status, generation, re-run annotation, the time, a jitter draw)
and what just happened (an ``Observation``) and returns a ``Decision``. The runner performs it and
comes back with the next observation. Every decision that changes something carries the whole
new ``RunStatus`` (conditions are rendered later, by ``emrops.api.conditions``) and, for
transitions, the Event to post.

Exactly once (DESIGN.md):

- ``Submit`` carries the intent (``phase: Submitting``, attempt n, ``submittedAt``). The runner
  writes it with a resourceVersion-conditioned patch and calls EMR only if that write won.
- ``Accepted`` records ``operationId`` / ``requestId`` / ``abnInstances`` at once.
- Found ``Submitting`` without ``operationId`` once the in-flight grace has passed (a crash,
  or another replica that died mid-call): the outcome is unknown, so ``Unknown`` + Stalled,
  and never a second call on our own. Only a new re-run annotation value starts another run.
- Errors that prove nothing was done (RETRY) go back to ``Pending`` with a backoff; bounded ones
  (RETRY_BOUNDED) at most ``Policy.bounded_attempts`` times; TERMINAL ends in ``Failed``;
  AMBIGUOUS ends in ``Unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from emrops.acs.codes import Classification
from emrops.api.constants import HISTORY_LIMIT
from emrops.api.status import (
    AbnInstanceStatus,
    HistoryEntry,
    LastError,
    OperationStatus,
    Phase,
    ProgressStatus,
    RunStatus,
    StateChangeReasonStatus,
    format_time,
    format_time_precise,
    parse_time,
)
from emrops.controller.backoff import Backoff

# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The knobs of the machine (from the operator's settings)."""

    backoff: Backoff = field(default_factory=Backoff)
    poll_initial: float = 2.0
    poll_max: float = 30.0
    #: RETRY_BOUNDED errors (InvokeEcmError) end in Failed after this many attempts.
    bounded_attempts: int = 3
    #: A ``Submitting`` status younger than this may still be in flight in some worker (ours
    #: before a restart, or another replica's): wait before declaring the outcome unknown. It
    #: must exceed the API call timeout plus the time to write the result.
    submit_grace: float = 60.0
    credentials_recheck: float = 15.0
    queue_recheck: float = 30.0


@dataclass(frozen=True)
class Context:
    """One ServiceAction as last read, plus the moment and a jitter draw in [0, 1)."""

    status: RunStatus
    now: datetime
    created_at: datetime
    generation: int | None = None
    rerun_value: str | None = None
    deadline_seconds: int | None = None
    jitter: float = 0.5
    #: The interval the worker last waited between two GetOperation polls (None before the first).
    poll_interval: float | None = None
    policy: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class CallError:
    """An EMR call's failure, as the machine needs it (built from ``emrops.emr.errors``)."""

    classification: Classification
    code: str
    message: str
    reason: str
    guidance: str = ""
    http_status: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    throttling: bool = False


@dataclass(frozen=True)
class OperationView:
    """What GetOperation told us about the run's operation."""

    operation_id: str
    state: str  # emrops.emr.models.OperationState value
    start_time: datetime | None = None
    end_time: datetime | None = None
    reason_code: str | None = None
    reason_message: str | None = None


@dataclass(frozen=True)
class Look:
    """Nothing new happened: decide from the object alone."""


@dataclass(frozen=True)
class Gates:
    """The checks made before submitting: whom we wait for, and whether credentials are usable."""

    waiting_for: tuple[str, ...] = ()
    credentials_problem: str | None = None


@dataclass(frozen=True)
class Accepted:
    """RunApplicationAction answered with an operation (for intent ``run``/``attempt``)."""

    run: int
    attempt: int
    operation_id: str
    request_id: str = ""
    abn_instances: tuple[tuple[str, str], ...] = ()  # (nodeId, nodeName)


@dataclass(frozen=True)
class Refused:
    """RunApplicationAction failed (for intent ``run``/``attempt``)."""

    run: int
    attempt: int
    error: CallError


@dataclass(frozen=True)
class Polled:
    operation: OperationView
    progress: ProgressStatus | None = None


@dataclass(frozen=True)
class PollFailed:
    error: CallError


Observation = Look | Gates | Accepted | Refused | Polled | PollFailed

# --- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or "Warning"


@dataclass(frozen=True)
class Decision:
    """Base: ``status`` is the new status to write (None: no change), ``event`` the Event."""

    status: RunStatus | None = None
    event: Event | None = None


@dataclass(frozen=True)
class Nothing(Decision):
    """The run is finished and no re-run is asked for: no worker needed."""


@dataclass(frozen=True)
class Gate(Decision):
    """Ready to submit: check the queue and the credentials, then decide again with ``Gates``."""


@dataclass(frozen=True)
class Submit(Decision):
    """Write the intent (``status``) conditionally; only if that wins, call RunApplicationAction."""


@dataclass(frozen=True)
class Poll(Decision):
    """Call GetOperation (and read progress) now, then decide again with ``Polled``."""


@dataclass(frozen=True)
class Wait(Decision):
    """Write ``status`` if given, wait ``after`` seconds (or until woken), then ``Look`` again."""

    after: float = 0.0
    #: When set, the worker remembers it as its current polling interval.
    poll_interval: float | None = None


@dataclass(frozen=True)
class Retry(Wait):
    """A call failed without effect: ``status`` records it; try again after ``after`` seconds."""


@dataclass(frozen=True)
class Finish(Decision):
    """The run ended (Succeeded or Failed): write ``status``; the worker stops."""


@dataclass(frozen=True)
class Stall(Decision):
    """The outcome is unknown: write ``status`` (Unknown); a person must look. The worker stops."""


@dataclass(frozen=True)
class Drop(Decision):
    """A late result that no longer applies (the status moved on): do nothing."""

    why: str = ""


# --- the machine ----------------------------------------------------------------------------

UNKNOWN_GUIDANCE = (
    "EMR may or may not have started the action. Check the cluster's operations in the EMR console; "
    "to run it (again), set the annotation emrops.io/run-requested-at to a new value."
)


def decide(ctx: Context, observation: Observation) -> Decision:
    """The next step for ``ctx`` after ``observation`` (see the module docstring)."""
    match observation:
        case Look():
            return _look(ctx)
        case Gates():
            return _gates(ctx, observation)
        case Accepted():
            return _accepted(ctx, observation)
        case Refused():
            return _refused(ctx, observation)
        case Polled():
            return _polled(ctx, observation)
        case PollFailed():
            return _poll_failed(ctx, observation)
    raise TypeError(f"not an observation: {observation!r}")  # pragma: no cover


def needs_attention(status: RunStatus, rerun_value: str | None) -> bool:
    """Whether an object needs a worker: its run is not finished, or a re-run is asked for."""
    if not status.finished:
        return True
    return rerun_value is not None and rerun_value != status.run_requested_at


def reject(ctx: Context, reason: str, message: str) -> Decision:
    """End a run that cannot even be attempted (a spec the CRD's validation should have refused)."""
    if ctx.status.finished or ctx.status.operation_id or ctx.status.phase is Phase.SUBMITTING:
        return Drop(why=message)
    return _failed(ctx, reason, message, ctx.status.last_error)


def _look(ctx: Context) -> Decision:
    st = ctx.status
    if st.phase is None:
        return Wait(
            status=_new_run(ctx, run=1, history=st.history, reason="Pending"),
            event=Event("Pending", "Accepted; waiting to submit RunApplicationAction"),
        )
    if st.finished:
        if _rerun_requested(ctx):
            return _start_rerun(ctx)
        return Nothing()

    if st.phase is Phase.SUBMITTING and not st.operation_id:
        in_flight_until = _submitted_at(ctx) + timedelta(seconds=ctx.policy.submit_grace)
        if ctx.now < in_flight_until:
            return Wait(after=_seconds(in_flight_until - ctx.now))
        return _unknown(
            ctx,
            "OutcomeUnknown",
            f"RunApplicationAction attempt {st.attempts or 1} was recorded as being submitted at "
            f"{st.submitted_at or 'an unknown time'}, but its answer was never recorded (the operator "
            f"stopped or lost the connection). {UNKNOWN_GUIDANCE}",
        )

    deadline = _deadline(ctx)
    if deadline is not None and ctx.now >= deadline:
        return _deadline_exceeded(ctx)

    if st.phase in (Phase.RUNNING, Phase.SUBMITTING):
        if not st.operation_id:
            return _unknown(
                ctx, "OutcomeUnknown", f"The status says Running but holds no operationId. {UNKNOWN_GUIDANCE}"
            )
        return Poll()

    # Pending or Queued: wait out a backoff, else check the gates.
    not_before = parse_time(st.next_attempt_at)
    if not_before is not None and ctx.now < not_before:
        return Wait(after=_capped(ctx, _seconds(not_before - ctx.now)))
    return Gate()


def _gates(ctx: Context, gates: Gates) -> Decision:
    st = ctx.status
    if st.finished or st.phase not in (Phase.PENDING, Phase.QUEUED):
        return Drop(why=f"gates checked in phase {st.phase}")
    if gates.waiting_for:
        waiting = tuple(gates.waiting_for)
        names = ", ".join(waiting)
        queued = st.model_copy(
            update={
                "phase": Phase.QUEUED,
                "waiting_for": waiting,
                "reason": "Queued",
                "stalled": False,
                "message": f"Waiting for {names} (overlapping targets; runs go in creation order)",
            }
        )
        changed = st.phase is not Phase.QUEUED or st.waiting_for != waiting
        event = Event("Queued", f"Waiting for {names}") if changed else None
        return Wait(
            after=_capped(ctx, ctx.policy.queue_recheck), status=queued if changed else None, event=event
        )
    if gates.credentials_problem:
        pending = st.model_copy(
            update={
                "phase": Phase.PENDING,
                "waiting_for": None,
                "reason": "CredentialsMissing",
                "stalled": False,
                "message": f"{gates.credentials_problem}; checking again every "
                f"{ctx.policy.credentials_recheck:.0f}s",
            }
        )
        changed = (
            st.reason != "CredentialsMissing" or st.message != pending.message or st.phase != Phase.PENDING
        )
        event = Event("CredentialsMissing", gates.credentials_problem, "Warning") if changed else None
        return Wait(
            after=_capped(ctx, ctx.policy.credentials_recheck),
            status=pending if changed else None,
            event=event,
        )
    attempt = (st.attempts or 0) + 1
    intent = st.model_copy(
        update={
            "phase": Phase.SUBMITTING,
            "attempts": attempt,
            "submitted_at": format_time(ctx.now),
            "next_attempt_at": None,
            "waiting_for": None,
            "reason": "Submitting",
            "stalled": False,
            "message": f"Calling RunApplicationAction (attempt {attempt})",
        }
    )
    return Submit(
        status=intent, event=Event("Submitting", f"Calling RunApplicationAction (attempt {attempt})")
    )


def _accepted(ctx: Context, result: Accepted) -> Decision:
    st = ctx.status
    if st.operation_id:
        return Drop(why=f"operation {st.operation_id} already recorded")
    if (st.run or 1) != result.run or (st.attempts or 0) != result.attempt:
        # Should not happen (the intent write made us the only caller of this attempt), but if
        # the status moved to another attempt we must not overwrite its record.
        return Drop(why=f"status is at run {st.run} attempt {st.attempts}, not {result.run}/{result.attempt}")
    abn = tuple(AbnInstanceStatus(node_id=node_id, node_name=name) for node_id, name in result.abn_instances)
    message = f"EMR operation {result.operation_id} is running"
    if abn:
        message += f"; abnormal instances: {', '.join(a.node_name or a.node_id for a in abn)}"
    running = st.model_copy(
        update={
            "phase": Phase.RUNNING,
            "operation_id": result.operation_id,
            "request_id": result.request_id or None,
            "abn_instances": abn,
            "next_attempt_at": None,
            "finished_at": None,
            "reason": "Running",
            "stalled": False,
            "message": message,
        }
    )
    event_text = f"RunApplicationAction accepted: operation {result.operation_id}"
    if result.request_id:
        event_text += f" (request id {result.request_id})"
    return Wait(
        after=_capped(ctx, ctx.policy.poll_initial),
        status=running,
        event=Event("Submitted", event_text),
        poll_interval=ctx.policy.poll_initial,
    )


def _refused(ctx: Context, result: Refused) -> Decision:
    st = ctx.status
    if st.operation_id or (st.run or 1) != result.run or (st.attempts or 0) != result.attempt:
        return Drop(why="the status moved on while the call was in flight")
    err = result.error
    last_error = _last_error(ctx, err)
    described = f"{err.code}: {err.message}"
    cls = err.classification
    if cls is Classification.AMBIGUOUS:
        guidance = err.guidance or UNKNOWN_GUIDANCE
        return _unknown(
            ctx,
            "OutcomeUnknown",
            f"The outcome of RunApplicationAction is unknown ({described}). {guidance}",
            last_error,
        )
    if cls is Classification.TERMINAL:
        return _failed(ctx, err.reason, _with_guidance(described, err.guidance), last_error)
    attempts = st.attempts or 1
    if cls is Classification.RETRY_BOUNDED and attempts >= ctx.policy.bounded_attempts:
        return _failed(
            ctx,
            err.reason,
            _with_guidance(f"{described} (after {attempts} attempts)", err.guidance),
            last_error,
        )
    delay = _capped(ctx, ctx.policy.backoff.delay(attempts, ctx.jitter, floor=err.retry_after))
    retry_at = ctx.now + timedelta(seconds=delay)
    pending = st.model_copy(
        update={
            "phase": Phase.PENDING,
            "last_error": last_error,
            "next_attempt_at": format_time(retry_at),
            "reason": err.reason,
            "stalled": False,
            "message": f"Attempt {attempts} failed with {described}; retrying in {delay:.1f}s",
        }
    )
    event_reason = "Throttled" if err.throttling else "Retrying"
    return Retry(
        after=delay,
        status=pending,
        event=Event(event_reason, f"Attempt {attempts}: {described}; retrying in {delay:.1f}s", "Warning"),
    )


def _polled(ctx: Context, polled: Polled) -> Decision:
    st = ctx.status
    op = polled.operation
    if st.phase is not Phase.RUNNING or op.operation_id != st.operation_id:
        return Drop(why=f"poll result for {op.operation_id} in phase {st.phase}")
    reason_status = (
        StateChangeReasonStatus(code=op.reason_code, message=op.reason_message)
        if op.reason_code or op.reason_message
        else None
    )
    operation = OperationStatus(
        state=op.state,
        start_time=format_time(op.start_time) if op.start_time else None,
        end_time=format_time(op.end_time) if op.end_time else None,
        state_change_reason=reason_status,
    )
    progress = polled.progress or st.progress
    update: dict[str, object] = {"operation": operation, "progress": progress, "last_error": st.last_error}
    cause = f"{op.reason_code}: {op.reason_message}" if op.reason_code else (op.reason_message or "")

    if op.state == "COMPLETED":
        if progress is not None and progress.total:
            progress = progress.model_copy(
                update={
                    "done": progress.total - progress.failed,
                    "message": _progress_message(
                        progress.total - progress.failed, progress.total, progress.failed
                    ),
                }
            )
        done = st.model_copy(
            update={
                **update,
                "progress": progress,
                "phase": Phase.SUCCEEDED,
                "finished_at": format_time(ctx.now),
                "reason": "Succeeded",
                "stalled": False,
                "message": f"EMR operation {op.operation_id} completed",
            }
        )
        return Finish(status=done, event=Event("Succeeded", f"EMR operation {op.operation_id} completed"))
    if op.state == "FAILED":
        text = f"EMR operation {op.operation_id} failed" + (f": {cause}" if cause else "")
        failed = st.model_copy(
            update={
                **update,
                "phase": Phase.FAILED,
                "finished_at": format_time(ctx.now),
                "reason": op.reason_code or "OperationFailed",
                "stalled": True,
                "message": text + ". Check the operation in the EMR console.",
            }
        )
        return Finish(status=failed, event=Event("Failed", text, "Warning"))
    if op.state == "HUMAN_PROCESSING":
        text = (
            f"EMR operation {op.operation_id} is waiting for a person (HUMAN_PROCESSING)"
            + (f": {cause}" if cause else "")
            + ". Resolve it in the EMR console; emrops keeps following the operation."
        )
        stalled = st.model_copy(
            update={**update, "reason": "HumanProcessing", "stalled": True, "message": text}
        )
        alert = None if st.reason == "HumanProcessing" else Event("HumanProcessing", text, "Warning")
        slow = ctx.policy.poll_max
        return _wait_if_changed(ctx, stalled, alert, _capped(ctx, slow), slow)

    # IN_PROGRESS (or a state we do not know: keep following it).
    interval = _next_interval(ctx)
    message = f"EMR operation {op.operation_id} is running"
    if progress is not None and progress.message:
        message += f": {progress.message}"
    running = st.model_copy(update={**update, "reason": "Running", "stalled": False, "message": message})
    event: Event | None = None
    if st.stalled:
        event = Event("Running", f"EMR operation {op.operation_id} is progressing again")
    elif progress is not None and progress != st.progress and progress.message:
        event = Event("Progress", progress.message)
    return _wait_if_changed(ctx, running, event, _capped(ctx, interval), interval)


def _poll_failed(ctx: Context, failed: PollFailed) -> Decision:
    st = ctx.status
    if st.phase is not Phase.RUNNING:
        return Drop(why=f"poll error in phase {st.phase}")
    err = failed.error
    described = f"{err.code}: {err.message}"
    if err.code == "ResourceNotFound":
        # EMR no longer knows an operation it accepted (or its cluster): no later poll can tell
        # how it ended, so stop polling and hand the decision to a human instead of waiting forever.
        text = (
            f"EMR no longer finds operation {st.operation_id} ({described}); whether it finished is "
            "unknown: check the services in the EMR console, then set the annotation "
            "emrops.io/run-requested-at to a new value if the action must run again"
        )
        return _unknown(ctx, "OperationNotFound", text, _last_error(ctx, err))
    if err.classification is Classification.TERMINAL:
        # The operation runs on in EMR whatever we can read: stay Running, but say we are stuck.
        text = _with_guidance(f"Cannot read EMR operation {st.operation_id} ({described})", err.guidance)
        stalled = st.model_copy(
            update={
                "last_error": _last_error(ctx, err),
                "reason": err.reason,
                "stalled": True,
                "message": text,
            }
        )
        event = None if st.reason == err.reason and st.stalled else Event(err.reason, text, "Warning")
        slow = ctx.policy.poll_max
        return Wait(after=_capped(ctx, slow), status=stalled, event=event, poll_interval=slow)
    interval = max(_next_interval(ctx), err.retry_after or 0.0)
    retrying = st.model_copy(update={"last_error": _last_error(ctx, err)})
    event = Event("Throttled", f"GetOperation: {described}", "Warning") if err.throttling else None
    return Retry(after=_capped(ctx, interval), status=retrying, event=event, poll_interval=interval)


# --- helpers --------------------------------------------------------------------------------


def _wait_if_changed(
    ctx: Context, new: RunStatus, event: Event | None, after: float, interval: float
) -> Wait:
    changed = new != ctx.status
    return Wait(after=after, status=new if changed else None, event=event, poll_interval=interval)


def _next_interval(ctx: Context) -> float:
    policy = ctx.policy
    if ctx.poll_interval is None:
        return policy.poll_initial
    return min(policy.poll_max, max(policy.poll_initial, ctx.poll_interval * 2))


def _progress_message(done: int, total: int, failed: int) -> str:
    text = f"{done} of {total} instances done"
    return text + (f", {failed} failed" if failed else "")


def _rerun_requested(ctx: Context) -> bool:
    return ctx.rerun_value is not None and ctx.rerun_value != ctx.status.run_requested_at


def _start_rerun(ctx: Context) -> Decision:
    st = ctx.status
    entry = HistoryEntry(
        run=st.run or 1,
        run_requested_at=st.run_requested_at,
        phase=st.phase.value if st.phase else None,
        operation_id=st.operation_id,
        request_id=st.request_id,
        start_time=st.start_time or st.submitted_at,
        end_time=st.finished_at,
        error_code=st.last_error.code if st.last_error and st.phase is not Phase.SUCCEEDED else None,
    )
    history = (*(st.history or ()), entry)[-HISTORY_LIMIT:]
    run = (st.run or 1) + 1
    return Wait(
        status=_new_run(ctx, run=run, history=history, reason="RerunRequested"),
        event=Event(
            "RerunRequested", f"Run {run} requested ({ctx.rerun_value}); run {run - 1} was {st.phase}"
        ),
    )


def _new_run(ctx: Context, *, run: int, history: tuple[HistoryEntry, ...] | None, reason: str) -> RunStatus:
    return RunStatus(
        phase=Phase.PENDING,
        run=run,
        run_requested_at=ctx.rerun_value,
        # Microseconds: the per-cluster queue orders runs accepted within the same second by it.
        start_time=format_time_precise(ctx.now),
        attempts=0,
        history=history,
        reason=reason,
        message=f"Run {run} accepted; waiting to submit RunApplicationAction",
        conditions=ctx.status.conditions,
    )


def _submitted_at(ctx: Context) -> datetime:
    return parse_time(ctx.status.submitted_at) or ctx.created_at


def _deadline(ctx: Context) -> datetime | None:
    if ctx.deadline_seconds is None:
        return None
    start = parse_time(ctx.status.start_time) or ctx.created_at
    return start + timedelta(seconds=ctx.deadline_seconds)


def _capped(ctx: Context, after: float) -> float:
    """``after``, but no later than the deadline (so we wake up to enforce it)."""
    deadline = _deadline(ctx)
    if deadline is None:
        return after
    return max(0.0, min(after, _seconds(deadline - ctx.now)))


def _deadline_exceeded(ctx: Context) -> Decision:
    st = ctx.status
    text = f"The run did not finish within activeDeadlineSeconds ({ctx.deadline_seconds}s)"
    if st.operation_id:
        text += (
            f"; EMR operation {st.operation_id} may still be running: emrops stopped following it, "
            "check it in the EMR console"
        )
    return _failed(ctx, "DeadlineExceeded", text, st.last_error)


def _failed(ctx: Context, reason: str, message: str, last_error: LastError | None) -> Finish:
    failed = ctx.status.model_copy(
        update={
            "phase": Phase.FAILED,
            "last_error": last_error,
            "finished_at": format_time(ctx.now),
            "next_attempt_at": None,
            "waiting_for": None,
            "reason": reason,
            "stalled": True,
            "message": message,
        }
    )
    return Finish(status=failed, event=Event("Failed", message, "Warning"))


def _unknown(ctx: Context, reason: str, message: str, last_error: LastError | None = None) -> Stall:
    unknown = ctx.status.model_copy(
        update={
            "phase": Phase.UNKNOWN,
            "last_error": last_error or ctx.status.last_error,
            "finished_at": format_time(ctx.now),
            "next_attempt_at": None,
            "reason": reason,
            "stalled": True,
            "message": message,
        }
    )
    return Stall(status=unknown, event=Event("OutcomeUnknown", message, "Warning"))


def _last_error(ctx: Context, err: CallError) -> LastError:
    return LastError(
        code=err.code,
        message=err.message,
        request_id=err.request_id,
        http_status=err.http_status,
        time=format_time(ctx.now),
    )


def _with_guidance(text: str, guidance: str) -> str:
    if not guidance:
        return text
    return f"{text.rstrip('.')}. {guidance}"


def _seconds(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds())
