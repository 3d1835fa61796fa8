"""The run state machine: from what we know of one ServiceAction, what to do next.

Pure: no kopf, no httpx, no clock, no randomness, no I/O. ``decide(ctx, observation)`` takes the
object as last read (``Context``: status, generation, annotations, the time, a jitter draw) and
what just happened (an ``Observation``) and returns a ``Decision``. The runner performs it and
comes back with the next observation. Every decision that changes something carries the whole
new ``RunStatus`` (conditions are rendered later, by ``emrops.api.conditions``) and, for
transitions, the Event to post. The runner writes that status conditioned on the
resourceVersion of the very object the decision was made from, so a decision taken from a stale
view can never land.

A new object (no phase yet) has no acceptance write of its own: its first write is the state the
run goes to, with what acceptance records (run 1, ``startTime``: the moment its worker first looked,
``Context.accepted_at``; the write adds ``observedGeneration`` and the conditions). One that may go
now gets ``Gate``, and the gates' decision is its first write: the intent, so the path from the
watch's ADDED to the intent is one write, or ``Queued`` or ``Pending`` (credentials missing). One
that must wait writes that state at once: ``Suspended``, ``Scheduled``, ``Failed``. ``accept``
gives the acceptance alone, for a runner whose intent would wait (a rate-limiter token, a
submission slot). A re-run keeps its own ``Pending`` write (``_start_rerun``): it records the
run's history and the acceptance time that orders it in its cluster's queue.

Exactly once:

- ``Submit`` carries the intent (``phase: Submitting``, attempt n, ``submittedAt``). The runner
  writes it conditionally, then checks the cluster's queue once more from a consistent read, and
  calls EMR only if both hold. When that check finds a run it must wait for, the intent is
  withdrawn (``Blocked``): no call was made, so going back to ``Queued`` is safe.
- ``Accepted`` records ``operationId`` / ``requestId`` / ``abnInstances`` at once.
- Found ``Submitting`` without ``operationId`` once the in-flight grace has passed (a crash,
  or another replica that died mid-call): the outcome is unknown, so ``Unknown`` + Stalled,
  and never a second call on our own. Only a new re-run annotation value starts another run.
- Errors that prove nothing was done (RETRY) go back to ``Pending`` with a backoff; bounded ones
  (RETRY_BOUNDED) at most ``Policy.bounded_attempts`` times (counted in ``boundedErrors``);
  TERMINAL ends in ``Failed``; AMBIGUOUS ends in ``Unknown``.

Suspend and time windows (``spec.suspend``, ``spec.notBefore``, ``spec.notAfter``): a run accepted
while ``suspend`` is true is ``Suspended``: the machine asks for its plan (``Plan``, answered by
``Planned``) and waits; ``suspend: false`` approves it (``approvedAt``) and it becomes ``Pending``.
Before ``notBefore`` an approved run is ``Scheduled``. Neither holds the cluster's queue. Once
``notAfter`` has passed, a run that has not written its intent ends ``Failed`` (WindowExpired)
without any call; one already submitted is followed to its end. ``activeDeadlineSeconds`` counts
from the latest of the run's acceptance, its approval and ``notBefore``, and never while suspended.

Holding the cluster (``holds_cluster``): a run keeps later overlapping runs on its cluster waiting
while it is unfinished, while it is ``Unknown`` (its operation may be running), and after a
deadline while its operation still runs (emrops keeps following it, slowly, to know when it
ends). A person releases an ``Unknown`` run with the ``emrops.io/acknowledged-at`` annotation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from emrops.acs.codes import Classification
from emrops.api.constants import HISTORY_LIMIT
from emrops.api.reasons import Reason
from emrops.api.status import (
    AbnInstanceStatus,
    HistoryEntry,
    LastError,
    OperationStatus,
    Phase,
    PlanStatus,
    ProgressStatus,
    RunStatus,
    StateChangeReasonStatus,
    format_time,
    format_time_precise,
    parse_time,
)
from emrops.controller.backoff import Backoff
from emrops.controller.plan import summary
from emrops.emr.models import OperationState

#: Operation states after which EMR changes nothing more.
ENDED = frozenset({OperationState.COMPLETED, OperationState.FAILED})

# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The knobs of the machine (from the operator's settings)."""

    backoff: Backoff = field(default_factory=Backoff)
    poll_initial: float = 2.0
    poll_max: float = 30.0
    #: RETRY_BOUNDED errors (InvokeEcmError) end in Failed after this many of them in one run.
    bounded_attempts: int = 3
    #: A ``Submitting`` status younger than this may still be in flight in some worker (ours
    #: before a restart, or another replica's): wait before declaring the outcome unknown. It
    #: must exceed the API call timeout plus the time to write the result.
    submit_grace: float = 60.0
    credentials_recheck: float = 15.0
    queue_recheck: float = 30.0
    #: GetOperation may not find an operation for a while after RunApplicationAction returned it
    #: (EMR's read-after-write lag): ``ResourceNotFound`` within this many seconds of the
    #: submission is polled again; after it, the run is Unknown.
    not_found_grace: float = 30.0
    #: A suspended run whose plan could not be resolved tries again after this many seconds.
    plan_retry: float = 30.0
    #: A run at rest (suspended, scheduled) looks at itself at least this often: a safety net, as
    #: a change of its own spec wakes its worker at once.
    rest_recheck: float = 600.0


@dataclass(frozen=True)
class Context:
    """One ServiceAction as last read, plus the moment and a jitter draw in [0, 1)."""

    status: RunStatus
    now: datetime
    created_at: datetime
    generation: int | None = None
    #: The ``emrops.io/run-requested-at`` annotation's value.
    rerun_value: str | None = None
    #: The ``emrops.io/acknowledged-at`` annotation's value.
    ack_value: str | None = None
    deadline_seconds: int | None = None
    jitter: float = 0.5
    #: The interval the worker last waited between two GetOperation polls (None before the first).
    poll_interval: float | None = None
    policy: Policy = field(default_factory=Policy)
    #: ``spec.suspend``, ``spec.notBefore``, ``spec.notAfter``.
    suspend: bool = False
    not_before: datetime | None = None
    not_after: datetime | None = None
    #: For a new object (no phase yet): when its worker first looked at it, the moment it was
    #: accepted. The write that records the acceptance (usually the intent, after the gates and
    #: the rate limiter) keeps it as ``startTime``, so ``activeDeadlineSeconds`` and the submit
    #: latency count those waits. None: now.
    accepted_at: datetime | None = None


@dataclass(frozen=True)
class CallError:
    """An EMR call's failure, as the machine needs it (built by ``emrops.controller.call_errors``)."""

    classification: Classification
    code: str
    message: str
    reason: str
    guidance: str = ""
    http_status: int | None = None
    request_id: str | None = None
    retry_after: float | None = None
    throttling: bool = False
    #: A "not found" that may be EMR's read-after-write lag (the error table's ``read_lag``).
    read_lag: bool = False


@dataclass(frozen=True)
class OperationView:
    """What GetOperation told us about the run's operation."""

    operation_id: str
    state: OperationState
    start_time: datetime | None = None
    end_time: datetime | None = None
    reason_code: str | None = None
    reason_message: str | None = None


@dataclass(frozen=True)
class Look:
    """Nothing new happened: decide from the object alone."""


@dataclass(frozen=True)
class Gates:
    """The checks made before submitting: whether credentials are usable, whom we wait for."""

    waiting_for: tuple[str, ...] = ()
    credentials_problem: str | None = None
    #: Names the intent a Submit writes (``status.intentId``): unique per attempt and writer, so
    #: a writer can tell its own intent from an identical one another replica wrote.
    intent_id: str = ""


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
class Blocked:
    """The intent for ``run``/``attempt`` was written but EMR was not called; withdraw it.

    ``waiting_for`` names the runs the consistent re-check found ahead of this one; when it is
    empty, ``why`` says what else stopped the call (the operator is shutting down, the re-check
    failed).
    """

    run: int
    attempt: int
    waiting_for: tuple[str, ...] = ()
    why: str = ""
    #: Only an intent with this id is withdrawn ("" : any intent of that run and attempt).
    intent_id: str = ""
    #: Withdrawals in a row for ``why`` (the worker counts them): the retry backs off on it.
    streak: int = 1


@dataclass(frozen=True)
class Polled:
    operation: OperationView
    progress: ProgressStatus | None = None
    #: When the GetOperation request was sent: what it says is true as of then, not of now.
    sent_at: datetime | None = None


@dataclass(frozen=True)
class PollFailed:
    error: CallError
    #: When the GetOperation request was sent.
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Planned:
    """The plan of run ``run`` was resolved (or could not be: ``plan.error``)."""

    run: int
    plan: PlanStatus


Observation = Look | Gates | Accepted | Refused | Blocked | Polled | PollFailed | Planned

# --- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or "Warning"


@dataclass(frozen=True)
class Decision:
    """Base: ``status`` is the new status to write (None: no change), ``event`` the Event.

    A decision that adds no field is a plain subclass: it inherits this dataclass' frozen
    ``__init__``, ``__eq__`` (which compares the class too), ``__hash__`` and ``__repr__`` (which
    names the subclass), so it needs no ``@dataclass`` of its own.
    """

    status: RunStatus | None = None
    event: Event | None = None


class Nothing(Decision):
    """The run is finished and no re-run is asked for: no worker needed."""


class Gate(Decision):
    """Ready to submit: check the credentials and the queue, then decide again with ``Gates``."""


class Submit(Decision):
    """Write the intent (``status``) conditionally; only if that wins, re-check, then call."""


class Plan(Decision):
    """Resolve the suspended run's plan (read APIs only), then decide again with ``Planned``."""


class Poll(Decision):
    """Call GetOperation (and read progress) now, then decide again with ``Polled``."""


@dataclass(frozen=True)
class Wait(Decision):
    """Write ``status`` if given, wait ``after`` seconds (or until woken), then ``Look`` again."""

    after: float = 0.0
    #: When set, the worker remembers it as its current polling interval.
    poll_interval: float | None = None


class Retry(Wait):
    """A call failed without effect: ``status`` records it; try again after ``after`` seconds."""


class Finish(Decision):
    """The run needs no more work (Succeeded, Failed, released): write ``status``; stop."""


class Stall(Decision):
    """The outcome is unknown: write ``status`` (Unknown); a person must look. The worker stops."""


@dataclass(frozen=True)
class Drop(Decision):
    """A late result that no longer applies (the status moved on): do nothing."""

    why: str = ""


# --- what a status means for others ---------------------------------------------------------

UNKNOWN_GUIDANCE = (
    "EMR may or may not have started the action. Check the cluster's operations in the EMR console; "
    "to run it (again), set the annotation emrops.io/run-requested-at to a new value; to let "
    "overlapping runs on the cluster go on without running it again, set emrops.io/acknowledged-at."
)


def following(status: RunStatus) -> bool:
    """A run that failed its deadline while its EMR operation still runs: emrops follows it on."""
    if status.phase is not Phase.FAILED or status.reason != Reason.DEADLINE_EXCEEDED:
        return False
    if not status.operation_id or _released(status):
        return False
    state = status.operation.state if status.operation else None
    return state not in ENDED


def holds_cluster(status: RunStatus) -> bool:
    """Whether this run keeps later overlapping runs on its cluster waiting.

    Every unfinished run does, except one waiting for its credentials, its approval or its time
    window (it may wait forever, and a run that cannot start must not stop others). A finished
    run does while its operation may still be running: ``Unknown``, or past its deadline with the
    operation not yet ended, until a person acknowledges it.
    """
    if not status.finished:
        if status.phase is not None and status.phase.at_rest:
            return False  # waiting for a person or a time: it may wait for ever
        return not (status.phase is Phase.PENDING and status.reason == Reason.CREDENTIALS_MISSING)
    if status.phase is Phase.UNKNOWN:
        return not _released(status)
    return following(status)


def exclusive(status: RunStatus) -> bool:
    """Whether the run blocks every overlapping run, earlier or later: its operation may be live."""
    if status.phase in (Phase.SUBMITTING, Phase.RUNNING):
        return True
    return status.finished and holds_cluster(status)


def needs_attention(
    status: RunStatus, rerun_value: str | None, ack_value: str | None = None, generation: int | None = None
) -> bool:
    """Whether an object needs a worker: unfinished, a re-run or acknowledgement asked, followed,
    or a spec change (``suspend``) not yet observed."""
    if not status.finished or _unobserved(status, generation):
        return True
    if rerun_value is not None and rerun_value != status.run_requested_at:
        return True
    if not holds_cluster(status):
        return False
    return following(status) or _ack_is_new(status, ack_value)


def _unobserved(status: RunStatus, generation: int | None) -> bool:
    """The spec changed (only ``suspend`` may) since the status was written: GitOps tools wait
    for ``observedGeneration`` to catch up, so it must be written even when nothing else moves."""
    observed = status.observed_generation
    return (
        generation is not None
        and observed is not None
        and status.phase is not None
        and observed != generation
    )


def _released(status: RunStatus) -> bool:
    return status.acknowledged_run is not None and status.acknowledged_run == (status.run or 1)


def _ack_is_new(status: RunStatus, ack_value: str | None) -> bool:
    return ack_value is not None and ack_value != status.acknowledged_at


# --- the machine ----------------------------------------------------------------------------


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
        case Blocked():
            return _blocked(ctx, observation)
        case Polled():
            return _polled(ctx, observation)
        case PollFailed():
            return _poll_failed(ctx, observation)
        case Planned():
            return _planned(ctx, observation)
    raise TypeError(f"not an observation: {observation!r}")  # pragma: no cover


def reject(ctx: Context, reason: str, message: str) -> Decision:
    """End a run that cannot even be attempted (a spec the CRD's validation should have refused)."""
    if ctx.status.finished or ctx.status.operation_id or ctx.status.phase is Phase.SUBMITTING:
        return Drop(why=message)
    ctx = _accepting(ctx)  # a new object's first write is this verdict, with run 1 and startTime
    return _failed(ctx, reason, message, ctx.status.last_error)


def accept(ctx: Context) -> Decision:
    """The acceptance write alone (``Pending``, run 1, ``startTime``) for a new object.

    The runner asks for it when a new object that could go at once must wait for its intent
    after all (the rate limiter has no token for it now, or the submission slots are taken), so
    that it does not wait without a status. Otherwise a new object's acceptance is folded into
    its first real write (see ``_first_look``).
    """
    if ctx.status.phase is not None:
        return Drop(why=f"already accepted ({ctx.status.phase})")
    text = "Accepted; waiting to submit RunApplicationAction"
    return Wait(status=_first_run(ctx), event=Event(Reason.PENDING, text))


def _first_run(ctx: Context) -> RunStatus:
    """What accepting a new object records: run 1, its ``startTime``, Pending (or Suspended)."""
    start = ctx.accepted_at or ctx.now
    return _new_run(ctx, run=1, history=ctx.status.history, reason=Reason.PENDING, start=start)


def _accepting(ctx: Context) -> Context:
    """``ctx`` as if its new object had been accepted now (unchanged for any other object): a
    decision about a new object then carries everything the acceptance records."""
    if ctx.status.phase is not None:
        return ctx
    return replace(ctx, status=_first_run(ctx))


def _first_look(ctx: Context) -> Decision:
    """A new object (no phase yet): its first write is the state it goes to, acceptance included.

    One that must wait writes that state at once: Suspended (with its plan to come), Scheduled,
    Failed (WindowExpired). One that may go now checks its gates (``Gate``), and the first write
    is what they decide: the intent (``Submitting``, attempt 1), ``Queued`` or ``Pending``
    (CredentialsMissing). Each of them records what acceptance did: run 1, ``startTime``
    (``activeDeadlineSeconds`` counts from it), ``runRequestedAt``, ``observedGeneration`` and the
    conditions (Reconciling=True: never healthy before it has run).
    """
    ctx = _accepting(ctx)
    first = ctx.status
    if first.phase is Phase.SUSPENDED:
        return Wait(status=first, event=Event(Reason.AWAITING_APPROVAL, first.message or ""))
    if _window_closed(ctx):
        return _window_expired(ctx)
    if ctx.not_before is not None and ctx.now < ctx.not_before:
        return _scheduled(ctx)
    return Gate()


def _look(ctx: Context) -> Decision:
    st = ctx.status
    if st.phase is None:
        return _first_look(ctx)
    if _unobserved(st, ctx.generation) and not (st.phase is Phase.SUBMITTING and not st.operation_id):
        # Written as it is: the write records the new observedGeneration (kube.render).
        return Wait(status=st.evolve(observed_generation=ctx.generation))
    if st.finished:
        if holds_cluster(st) and _ack_is_new(st, ctx.ack_value):
            return _acknowledge(ctx)
        if following(st):
            # Its operation still runs: a re-run (an overlapping operation of its own) waits.
            return Poll()
        if _rerun_requested(ctx):
            return _start_rerun(ctx)
        return Nothing()

    if st.phase is Phase.SUBMITTING and not st.operation_id:
        in_flight_until = _submitted_at(ctx) + timedelta(seconds=ctx.policy.submit_grace)
        if ctx.now < in_flight_until:
            return Wait(after=_seconds(in_flight_until - ctx.now))
        return _unknown(
            ctx,
            Reason.OUTCOME_UNKNOWN,
            f"RunApplicationAction attempt {st.attempts or 1} was recorded as being submitted at "
            f"{st.submitted_at or 'an unknown time'}, but its answer was never recorded (the operator "
            f"stopped or lost the connection). {UNKNOWN_GUIDANCE}",
        )

    if st.phase is Phase.SUBMITTING and st.operation_id:
        # Only a hand edit or another version writes this: the call was answered, so it runs.
        repaired = st.evolve(phase=Phase.RUNNING, reason=Reason.RUNNING, stalled=False)
        return Wait(status=repaired, poll_interval=ctx.policy.poll_initial)

    if st.phase is Phase.RUNNING:
        if not st.operation_id:
            return _unknown(
                ctx,
                Reason.OUTCOME_UNKNOWN,
                f"The status says Running but holds no operationId. {UNKNOWN_GUIDANCE}",
            )
        # Also at the deadline: the poll's answer decides, so an operation that completed in the
        # last interval is reported Succeeded, not DeadlineExceeded.
        return Poll()

    if _past_deadline(ctx):
        return _deadline_exceeded(ctx)
    if _window_closed(ctx):
        return _window_expired(ctx)
    if st.phase is Phase.SUSPENDED:
        return _suspended(ctx)
    if ctx.not_before is not None and ctx.now < ctx.not_before:
        return _scheduled(ctx)
    if st.phase is Phase.SCHEDULED:
        opened = st.evolve(
            phase=Phase.PENDING,
            reason=Reason.PENDING,
            stalled=False,
            message=f"The window opened at {format_time(ctx.not_before or ctx.now)}; "
            "waiting to submit RunApplicationAction",
        )
        return Wait(status=opened, event=Event(Reason.WINDOW_OPEN, opened.message or ""))

    # Pending or Queued: wait out a backoff, else check the gates.
    retry_at = parse_time(st.next_attempt_at)
    if retry_at is not None and ctx.now < retry_at:
        return Wait(after=_capped(ctx, _seconds(retry_at - ctx.now)))
    return Gate()


def _suspended(ctx: Context) -> Decision:
    """A run waiting for approval: have its plan, then wait for ``suspend: false``."""
    st = ctx.status
    run = st.run or 1
    if not ctx.suspend:
        approved = st.evolve(
            phase=Phase.PENDING,
            approved_at=format_time(ctx.now),
            reason=Reason.PENDING,
            stalled=False,
            message=f"Run {run} approved (spec.suspend: false); waiting to submit RunApplicationAction",
        )
        return Wait(status=approved, event=Event(Reason.APPROVED, approved.message or ""))
    plan = st.plan if st.plan is not None and st.plan.run == run else None
    if plan is None or plan.error:
        # A failed plan is tried again here, after the worker's Retry wait (a restart: at once).
        return Plan()
    return Wait(after=_resting(ctx, ctx.policy.rest_recheck))


def _planned(ctx: Context, planned: Planned) -> Decision:
    st = ctx.status
    if st.phase is not Phase.SUSPENDED or (st.run or 1) != planned.run or not ctx.suspend:
        return Drop(why="the run is no longer suspended")
    plan = planned.plan
    window = _window_text(ctx)
    if plan.error:
        text = (
            f"Suspended: waiting for approval (set spec.suspend: false); {summary(plan)}; "
            f"trying again every {ctx.policy.plan_retry:.0f}s{window}"
        )
        # The same error again changes nothing on record (no write every retry).
        same = st.plan is not None and st.plan.run == plan.run and st.plan.error == plan.error
        unavailable = st.evolve(
            plan=st.plan if same else plan, reason=Reason.PLAN_UNAVAILABLE, stalled=False, message=text
        )
        changed = unavailable != st
        event = Event(Reason.PLAN_UNAVAILABLE, summary(plan), "Warning") if changed else None
        # A Retry: cluster events do not cut it short (each would list the cluster again); an
        # approval does (the worker wakes on any spec change).
        return Retry(
            after=_resting(ctx, ctx.policy.plan_retry), status=unavailable if changed else None, event=event
        )
    text = f"Suspended: waiting for approval (set spec.suspend: false). Plan: {summary(plan)}{window}"
    ready = st.evolve(plan=plan, reason=Reason.AWAITING_APPROVAL, stalled=False, message=text)
    return Wait(
        after=_resting(ctx, ctx.policy.rest_recheck),
        status=ready,
        event=Event(Reason.PLANNED, f"Run {st.run or 1}: {summary(plan)}"),
    )


def _scheduled(ctx: Context) -> Decision:
    """Before ``notBefore``: wait for it at rest (holding no queue place), then look again."""
    st = ctx.status
    assert ctx.not_before is not None
    text = f"Waiting for the window: the run starts at notBefore {format_time(ctx.not_before)}"
    if ctx.not_after is not None:
        text += f" and no later than notAfter {format_time(ctx.not_after)}"
    scheduled = st.evolve(
        phase=Phase.SCHEDULED,
        waiting_for=None,
        next_attempt_at=None,
        reason=Reason.WAITING_FOR_WINDOW,
        stalled=False,
        message=text,
    )
    moved = scheduled != st
    return Wait(
        after=_seconds(ctx.not_before - ctx.now),
        status=scheduled if moved else None,
        event=Event(Reason.WAITING_FOR_WINDOW, text) if moved else None,
    )


def _window_closed(ctx: Context) -> bool:
    return ctx.not_after is not None and ctx.now >= ctx.not_after


def window_problem(ctx: Context) -> str | None:
    """Why a call must not go out now (the run's time window), or None: the runner asks it again
    between the intent write and the call."""
    if _window_closed(ctx):
        assert ctx.not_after is not None
        return f"the window closed at notAfter {format_time(ctx.not_after)}"
    if ctx.not_before is not None and ctx.now < ctx.not_before:
        return f"the window opens at notBefore {format_time(ctx.not_before)}"
    return None


def _window_expired(ctx: Context) -> Decision:
    assert ctx.not_after is not None
    text = (
        f"The run did not start before notAfter {format_time(ctx.not_after)}; nothing was sent to "
        "EMR. To run the action, create a new ServiceAction with a later window"
    )
    return _failed(ctx, Reason.WINDOW_EXPIRED, text, ctx.status.last_error)


def _window_text(ctx: Context) -> str:
    parts = []
    if ctx.not_before is not None:
        parts.append(f"not before {format_time(ctx.not_before)}")
    if ctx.not_after is not None:
        parts.append(f"not after {format_time(ctx.not_after)}")
    return f"; window: {', '.join(parts)}" if parts else ""


def _resting(ctx: Context, after: float) -> float:
    """``after``, but no later than ``notAfter`` (so we wake up to end an unstarted run)."""
    if ctx.not_after is None:
        return after
    return max(0.0, min(after, _seconds(ctx.not_after - ctx.now)))


def _gates(ctx: Context, gates: Gates) -> Decision:
    ctx = _accepting(ctx)  # a new object: acceptance and this decision are one write
    st = ctx.status
    if st.finished or st.phase not in (Phase.PENDING, Phase.QUEUED):
        return Drop(why=f"gates checked in phase {st.phase}")
    if _past_deadline(ctx):  # the gates (and the token wait after them) took us past it
        return _deadline_exceeded(ctx)
    if _window_closed(ctx):
        return _window_expired(ctx)
    if gates.credentials_problem:
        # Checked before the queue: a run that cannot start does not hold anyone's place.
        pending = st.evolve(
            phase=Phase.PENDING,
            waiting_for=None,
            reason=Reason.CREDENTIALS_MISSING,
            stalled=False,
            message=f"{gates.credentials_problem}; checking again every "
            f"{ctx.policy.credentials_recheck:.0f}s",
        )
        changed = (
            st.reason != Reason.CREDENTIALS_MISSING
            or st.message != pending.message
            or st.phase != Phase.PENDING
        )
        event = Event(Reason.CREDENTIALS_MISSING, gates.credentials_problem, "Warning") if changed else None
        return Wait(
            after=_capped(ctx, ctx.policy.credentials_recheck),
            status=pending if changed else None,
            event=event,
        )
    if gates.waiting_for:
        return _queued(ctx, st, gates.waiting_for)
    attempt = (st.attempts or 0) + 1
    intent = st.evolve(
        phase=Phase.SUBMITTING,
        attempts=attempt,
        intent_id=gates.intent_id or None,
        # Microseconds: a replica judging an unanswered intent against the in-flight grace
        # should not lose up to a second to truncation.
        submitted_at=format_time_precise(ctx.now),
        next_attempt_at=None,
        waiting_for=None,
        reason=Reason.SUBMITTING,
        stalled=False,
        message=f"Calling RunApplicationAction (attempt {attempt})",
    )
    return Submit(
        status=intent, event=Event(Reason.SUBMITTING, f"Calling RunApplicationAction (attempt {attempt})")
    )


def _queued(ctx: Context, base: RunStatus, waiting_for: tuple[str, ...]) -> Wait:
    """Wait in the queue behind ``waiting_for``; ``base`` is the status to derive it from."""
    names = ", ".join(waiting_for)
    queued = base.evolve(
        phase=Phase.QUEUED,
        waiting_for=waiting_for,
        reason=Reason.QUEUED,
        stalled=False,
        message=f"Waiting for {names} (overlapping targets; runs go in creation order)",
    )
    st = ctx.status
    moved = base is not st or st.phase is not Phase.QUEUED or st.waiting_for != waiting_for
    event = Event(Reason.QUEUED, f"Waiting for {names}") if moved else None
    return Wait(after=_capped(ctx, ctx.policy.queue_recheck), status=queued if moved else None, event=event)


def _blocked(ctx: Context, blocked: Blocked) -> Decision:
    st = ctx.status
    if (
        st.phase is not Phase.SUBMITTING
        or st.operation_id
        or (st.run or 1) != blocked.run
        or (st.attempts or 0) != blocked.attempt
        or (blocked.intent_id and st.intent_id != blocked.intent_id)
    ):
        return Drop(why="the intent to withdraw is no longer the status")
    # No call was made for this attempt: take it back as if it had never been written.
    withdrawn = st.evolve(attempts=blocked.attempt - 1, submitted_at=None, intent_id=None)
    if blocked.waiting_for:
        return _queued(ctx, withdrawn, blocked.waiting_for)
    retry_in = _capped(ctx, ctx.policy.backoff.delay(blocked.streak, ctx.jitter))
    text = f"RunApplicationAction was not called ({blocked.why}); trying again"
    pending = withdrawn.evolve(
        phase=Phase.PENDING,
        waiting_for=None,
        next_attempt_at=format_time(ctx.now + timedelta(seconds=retry_in)),
        reason=Reason.PENDING,
        stalled=False,
        message=text,
    )
    # The first withdrawal in a row has its Event (a new run's Pending is visible nowhere else:
    # its acceptance was folded into the intent, and Submitting is not posted); the next ones
    # of the same streak say nothing new.
    event = Event(Reason.PENDING, text) if blocked.streak <= 1 else None
    return Wait(after=retry_in, status=pending, event=event)


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
    running = st.evolve(
        phase=Phase.RUNNING,
        operation_id=result.operation_id,
        request_id=result.request_id or None,
        abn_instances=abn,
        next_attempt_at=None,
        finished_at=None,
        reason=Reason.RUNNING,
        stalled=False,
        message=message,
    )
    event_text = f"RunApplicationAction accepted: operation {result.operation_id}"
    if result.request_id:
        event_text += f" (request id {result.request_id})"
    return Wait(
        after=_capped(ctx, ctx.policy.poll_initial),
        status=running,
        event=Event(Reason.SUBMITTED, event_text),
        poll_interval=ctx.policy.poll_initial,
    )


def _refused(ctx: Context, result: Refused) -> Decision:
    st = ctx.status
    if (
        st.phase is not Phase.SUBMITTING  # e.g. this very refusal already recorded (a lost answer)
        or st.operation_id
        or (st.run or 1) != result.run
        or (st.attempts or 0) != result.attempt
    ):
        return Drop(why="the status moved on while the call was in flight")
    err = result.error
    last_error = _last_error(ctx, err)
    described = f"{err.code}: {err.message}"
    cls = err.classification
    if cls is Classification.AMBIGUOUS:
        guidance = err.guidance or UNKNOWN_GUIDANCE
        return _unknown(
            ctx,
            Reason.OUTCOME_UNKNOWN,
            f"The outcome of RunApplicationAction is unknown ({described}). {guidance}",
            last_error,
        )
    if cls is Classification.TERMINAL:
        return _failed(ctx, err.reason, _with_guidance(described, err.guidance), last_error)
    attempts = st.attempts or 1
    bounded = (st.bounded_errors or 0) + (1 if cls is Classification.RETRY_BOUNDED else 0)
    if cls is Classification.RETRY_BOUNDED and bounded >= ctx.policy.bounded_attempts:
        return _failed(
            ctx,
            err.reason,
            _with_guidance(f"{described} ({bounded} times in this run)", err.guidance),
            last_error,
        )
    delay = _capped(ctx, ctx.policy.backoff.delay(attempts, ctx.jitter, floor=err.retry_after))
    retry_at = ctx.now + timedelta(seconds=delay)
    pending = st.evolve(
        phase=Phase.PENDING,
        last_error=last_error,
        bounded_errors=bounded or None,
        next_attempt_at=format_time(retry_at),
        reason=err.reason,
        stalled=False,
        message=f"Attempt {attempts} failed with {described}; retrying in {delay:.1f}s",
    )
    event_reason = Reason.THROTTLED if err.throttling else Reason.RETRYING
    return Retry(
        after=delay,
        status=pending,
        event=Event(event_reason, f"Attempt {attempts}: {described}; retrying in {delay:.1f}s", "Warning"),
    )


def _operation_status(op: OperationView) -> OperationStatus:
    reason = (
        StateChangeReasonStatus(code=op.reason_code, message=op.reason_message)
        if op.reason_code or op.reason_message
        else None
    )
    return OperationStatus(
        state=op.state.value,
        start_time=format_time(op.start_time) if op.start_time else None,
        end_time=format_time(op.end_time) if op.end_time else None,
        state_change_reason=reason,
    )


def _polled(ctx: Context, polled: Polled) -> Decision:
    st = ctx.status
    op = polled.operation
    if op.operation_id != st.operation_id:
        return Drop(why=f"poll result for {op.operation_id}, status holds {st.operation_id}")
    if following(st):
        return _followed(ctx, op)
    if st.phase is not Phase.RUNNING:
        return Drop(why=f"poll result for {op.operation_id} in phase {st.phase}")
    operation = _operation_status(op)
    progress = polled.progress or st.progress
    cause = f"{op.reason_code}: {op.reason_message}" if op.reason_code else (op.reason_message or "")

    if op.state is OperationState.COMPLETED:
        if progress is not None and progress.total:
            done_count = progress.total - progress.failed
            progress = progress.model_copy(
                update={
                    "done": done_count,
                    "message": _progress_message(done_count, progress.total, progress.failed),
                }
            )
        done = st.evolve(
            operation=operation,
            progress=progress,
            phase=Phase.SUCCEEDED,
            finished_at=format_time(ctx.now),
            reason=Reason.SUCCEEDED,
            stalled=False,
            message=f"EMR operation {op.operation_id} completed",
        )
        return Finish(
            status=done, event=Event(Reason.SUCCEEDED, f"EMR operation {op.operation_id} completed")
        )
    if op.state is OperationState.FAILED:
        text = f"EMR operation {op.operation_id} failed" + (f": {cause}" if cause else "")
        failed = st.evolve(
            operation=operation,
            progress=progress,
            phase=Phase.FAILED,
            finished_at=format_time(ctx.now),
            reason=op.reason_code or Reason.OPERATION_FAILED,
            stalled=True,
            message=text + ". Check the operation in the EMR console.",
        )
        return Finish(status=failed, event=Event(Reason.FAILED, text, "Warning"))
    if _past_deadline(ctx):
        if _sent_before_deadline(ctx, polled.sent_at):
            return Poll()  # an answer from before the deadline cannot say how it stands now
        return _deadline_exceeded(ctx, st.evolve(operation=operation, progress=progress))
    if op.state is OperationState.HUMAN_PROCESSING:
        text = (
            f"EMR operation {op.operation_id} is waiting for a person (HUMAN_PROCESSING)"
            + (f": {cause}" if cause else "")
            + ". Resolve it in the EMR console; emrops keeps following the operation."
        )
        stalled = st.evolve(
            operation=operation, progress=progress, reason=Reason.HUMAN_PROCESSING, stalled=True, message=text
        )
        alert = (
            None if st.reason == Reason.HUMAN_PROCESSING else Event(Reason.HUMAN_PROCESSING, text, "Warning")
        )
        slow = ctx.policy.poll_max
        return _wait_if_changed(ctx, stalled, alert, _capped(ctx, slow), slow)

    # IN_PROGRESS.
    interval = _next_interval(ctx)
    message = f"EMR operation {op.operation_id} is running"
    if progress is not None and progress.message:
        message += f": {progress.message}"
    running = st.evolve(
        operation=operation, progress=progress, reason=Reason.RUNNING, stalled=False, message=message
    )
    event: Event | None = None
    if st.stalled:
        event = Event(Reason.RUNNING, f"EMR operation {op.operation_id} is progressing again")
    elif progress is not None and progress != st.progress and progress.message:
        event = Event(Reason.PROGRESS, progress.message)
    return _wait_if_changed(ctx, running, event, _capped(ctx, interval), interval)


def _followed(ctx: Context, op: OperationView) -> Decision:
    """A poll of an operation followed after the run's deadline: record its state until it ends."""
    st = ctx.status
    updated = st.evolve(operation=_operation_status(op))
    if op.state in ENDED:
        text = (
            f"EMR operation {op.operation_id} ended ({op.state.value}) after the run's deadline; "
            "overlapping runs on the cluster may go on"
        )
        return Finish(status=updated, event=Event(Reason.OPERATION_ENDED, text))
    slow = ctx.policy.poll_max  # never capped: the deadline has passed already
    return Wait(after=slow, status=updated if updated != st else None, poll_interval=slow)


def _poll_failed(ctx: Context, failed: PollFailed) -> Decision:
    st = ctx.status
    err = failed.error
    if following(st):
        slow = ctx.policy.poll_max
        if err.read_lag and ctx.now >= _submitted_at(ctx) + timedelta(seconds=ctx.policy.not_found_grace):
            # EMR no longer knows the operation: nobody can tell when (or whether) it ended.
            text = (
                f"{st.message} EMR no longer finds operation {st.operation_id} ({err.code}), so "
                f"whether it still runs is unknown. {UNKNOWN_GUIDANCE}"
            )
            return _unknown(ctx, Reason.OPERATION_NOT_FOUND, text, _last_error(ctx, err))
        noted = st.evolve(last_error=_last_error(ctx, err))
        return Retry(
            after=slow, status=noted if noted.last_error != st.last_error else None, poll_interval=slow
        )
    if st.phase is not Phase.RUNNING:
        return Drop(why=f"poll error in phase {st.phase}")
    if _past_deadline(ctx):
        if _sent_before_deadline(ctx, failed.sent_at):
            return Poll()  # one more try from after the deadline before giving up on it
        return _deadline_exceeded(ctx)
    described = f"{err.code}: {err.message}"
    if err.read_lag:
        lag_until = _submitted_at(ctx) + timedelta(seconds=ctx.policy.not_found_grace)
        # Judged at the moment the request was sent: a slow answer does not shorten the grace.
        if (failed.sent_at or ctx.now) < lag_until:
            # Maybe only EMR's read-after-write lag: the operation was accepted a moment ago.
            interval = _next_interval(ctx)
            return Retry(
                after=_capped(ctx, interval),
                status=st.evolve(last_error=_last_error(ctx, err)),
                poll_interval=interval,
            )
        # EMR no longer knows an operation it accepted (or its cluster): no later poll can tell
        # how it ended, so stop polling and hand the decision to a human instead of waiting forever.
        text = (
            f"EMR no longer finds operation {st.operation_id} ({described}); whether it finished is "
            f"unknown. {UNKNOWN_GUIDANCE}"
        )
        return _unknown(ctx, Reason.OPERATION_NOT_FOUND, text, _last_error(ctx, err))
    if err.classification is Classification.TERMINAL:
        # The operation runs on in EMR whatever we can read: stay Running, but say we are stuck.
        text = _with_guidance(f"Cannot read EMR operation {st.operation_id} ({described})", err.guidance)
        stalled = st.evolve(last_error=_last_error(ctx, err), reason=err.reason, stalled=True, message=text)
        event = None if st.reason == err.reason and st.stalled else Event(err.reason, text, "Warning")
        slow = ctx.policy.poll_max
        return Wait(after=_capped(ctx, slow), status=stalled, event=event, poll_interval=slow)
    interval = max(_next_interval(ctx), err.retry_after or 0.0)
    retrying = st.evolve(last_error=_last_error(ctx, err))
    event = Event(Reason.THROTTLED, f"GetOperation: {described}", "Warning") if err.throttling else None
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
        status=_new_run(ctx, run=run, history=history, reason=Reason.RERUN_REQUESTED),
        event=Event(
            Reason.RERUN_REQUESTED, f"Run {run} requested ({ctx.rerun_value}); run {run - 1} was {st.phase}"
        ),
    )


def _acknowledge(ctx: Context) -> Decision:
    st = ctx.status
    released = st.evolve(acknowledged_at=ctx.ack_value, acknowledged_run=st.run or 1)
    text = (
        f"Acknowledged ({ctx.ack_value}): run {st.run or 1} no longer holds the cluster's queue; "
        f"it stays {st.phase.value if st.phase else 'as it is'}"
    )
    return Finish(status=released, event=Event(Reason.ACKNOWLEDGED, text))


def _new_run(
    ctx: Context,
    *,
    run: int,
    history: tuple[HistoryEntry, ...] | None,
    reason: str,
    start: datetime | None = None,
) -> RunStatus:
    if ctx.suspend:
        # A plan first: no call until a person sets spec.suspend: false.
        phase, reason = Phase.SUSPENDED, Reason.AWAITING_APPROVAL
        message = f"Run {run} accepted suspended (spec.suspend: true); resolving its plan"
    else:
        phase, message = Phase.PENDING, f"Run {run} accepted; waiting to submit RunApplicationAction"
    return RunStatus(
        phase=phase,
        run=run,
        run_requested_at=ctx.rerun_value,
        # Microseconds: the per-cluster queue orders re-runs accepted within the same second by it.
        start_time=format_time_precise(start or ctx.now),
        attempts=0,
        # A value present before the run started cannot acknowledge how it ends.
        acknowledged_at=ctx.ack_value,
        history=history,
        reason=reason,
        message=message,
        conditions=ctx.status.conditions,
    )


def _submitted_at(ctx: Context) -> datetime:
    return parse_time(ctx.status.submitted_at) or ctx.created_at


def _deadline(ctx: Context) -> datetime | None:
    """When ``activeDeadlineSeconds`` runs out: counted from the latest of the run's acceptance,
    its approval and ``notBefore`` (a run may not start before them), never while suspended."""
    if ctx.deadline_seconds is None or ctx.status.phase is Phase.SUSPENDED:
        return None
    start = parse_time(ctx.status.start_time) or ctx.created_at
    for later in (parse_time(ctx.status.approved_at), ctx.not_before):
        if later is not None and later > start:
            start = later
    return start + timedelta(seconds=ctx.deadline_seconds)


def _past_deadline(ctx: Context) -> bool:
    deadline = _deadline(ctx)
    return deadline is not None and ctx.now >= deadline


def _sent_before_deadline(ctx: Context, sent_at: datetime | None) -> bool:
    deadline = _deadline(ctx)
    return deadline is not None and sent_at is not None and sent_at < deadline


def _capped(ctx: Context, after: float) -> float:
    """``after``, but no later than the deadline (so we wake up to enforce it)."""
    deadline = _deadline(ctx)
    if deadline is None:
        return after
    return max(0.0, min(after, _seconds(deadline - ctx.now)))


def _deadline_exceeded(ctx: Context, base: RunStatus | None = None) -> Decision:
    st = base or ctx.status
    text = f"The run did not finish within activeDeadlineSeconds ({ctx.deadline_seconds}s)"
    if st.operation_id:
        text += (
            f"; EMR operation {st.operation_id} may still be running (EMR does not cancel it): emrops "
            "follows it until it ends and keeps overlapping runs on the cluster waiting until then"
        )
    failed = _failed_status(ctx, st, Reason.DEADLINE_EXCEEDED, text, st.last_error)
    event = Event(Reason.FAILED, text, "Warning")
    if following(failed):
        failed = failed.evolve(acknowledged_at=ctx.ack_value)  # as for Unknown: only later values count
        slow = ctx.policy.poll_max
        return Wait(after=slow, status=failed, event=event, poll_interval=slow)
    return Finish(status=failed, event=event)


def _failed_status(
    ctx: Context, base: RunStatus, reason: str, message: str, last_error: LastError | None
) -> RunStatus:
    return base.evolve(
        phase=Phase.FAILED,
        last_error=last_error,
        finished_at=format_time(ctx.now),
        next_attempt_at=None,
        waiting_for=None,
        reason=reason,
        stalled=True,
        message=message,
    )


def _failed(ctx: Context, reason: str, message: str, last_error: LastError | None) -> Finish:
    failed = _failed_status(ctx, ctx.status, reason, message, last_error)
    return Finish(status=failed, event=Event(Reason.FAILED, message, "Warning"))


def _unknown(ctx: Context, reason: str, message: str, last_error: LastError | None = None) -> Stall:
    unknown = ctx.status.evolve(
        # Only a value set after this can acknowledge the outcome: "I checked it".
        acknowledged_at=ctx.ack_value,
        phase=Phase.UNKNOWN,
        last_error=last_error or ctx.status.last_error,
        finished_at=format_time(ctx.now),
        next_attempt_at=None,
        waiting_for=None,
        reason=reason,
        stalled=True,
        message=message,
    )
    return Stall(status=unknown, event=Event(Reason.OUTCOME_UNKNOWN, message, "Warning"))


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
