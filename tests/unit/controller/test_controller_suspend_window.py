"""The state machine with spec.suspend (a plan, then approval) and notBefore/notAfter windows.

Pure: each test builds a ``Context`` and walks the decisions as the runner would perform them,
feeding back the status each decision writes. What matters most is the absence of calls: no path
below reaches ``Submit`` while suspended, before notBefore or after notAfter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emrops.api.conditions import with_conditions
from emrops.api.reasons import Reason
from emrops.api.status import Phase, PlanStatus, RunStatus, format_time
from emrops.controller.machine import (
    Blocked,
    Context,
    Decision,
    Finish,
    Gate,
    Gates,
    Look,
    Nothing,
    Plan,
    Planned,
    Retry,
    Submit,
    Wait,
    decide,
    holds_cluster,
    needs_attention,
    window_problem,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PLAN = PlanStatus(run=1, resolved_at=format_time(NOW), instance_count=4, batch_count=2, estimated_seconds=300)


def ctx(st: RunStatus, at: datetime = NOW, **kw: Any) -> Context:
    return Context(status=st, now=at, created_at=NOW - timedelta(minutes=1), **kw)


def step(c: Context, observation: Any = None) -> tuple[Decision, Context]:
    """One decision from ``c``; the next context holds the status it writes."""
    decision = decide(c, observation or Look())
    status = decision.status if decision.status is not None else c.status
    return decision, Context(**{**c.__dict__, "status": status})


def later(c: Context, seconds: float, **changes: Any) -> Context:
    return Context(**{**c.__dict__, "now": c.now + timedelta(seconds=seconds), **changes})


def test_a_suspended_run_resolves_its_plan_and_waits_without_a_call() -> None:
    decision, c = step(ctx(RunStatus(), suspend=True))
    assert isinstance(decision, Wait) and c.status.phase is Phase.SUSPENDED
    assert decision.event is not None and decision.event.reason == Reason.AWAITING_APPROVAL

    decision, c = step(c)
    assert isinstance(decision, Plan)
    decision, c = step(c, Planned(1, PLAN))
    assert isinstance(decision, Wait) and decision.after > 0
    assert c.status.plan == PLAN and c.status.reason == Reason.AWAITING_APPROVAL
    assert "4 instances in 2 batches, about 5m" in (c.status.message or "")

    # Looking again (a restart, a wake-up): still waiting, no new plan, nothing written.
    decision, c = step(later(c, 3600))
    assert isinstance(decision, Wait) and decision.status is None
    assert not holds_cluster(c.status)
    assert needs_attention(c.status, None)


def test_approval_starts_the_run_and_records_when() -> None:
    st = RunStatus(phase=Phase.SUSPENDED, run=1, plan=PLAN, reason=Reason.AWAITING_APPROVAL)
    decision, c = step(ctx(st, suspend=False, deadline_seconds=60))
    assert isinstance(decision, Wait) and decision.event is not None
    assert decision.event.reason == Reason.APPROVED
    assert c.status.phase is Phase.PENDING and c.status.approved_at == format_time(NOW)
    assert c.status.plan == PLAN  # kept: what was approved
    decision, c = step(c)
    assert isinstance(decision, Gate)
    decision, _ = step(c, Gates(intent_id="i-1"))
    assert isinstance(decision, Submit)


def test_the_deadline_never_runs_while_suspended_and_counts_from_the_approval() -> None:
    st = RunStatus(phase=Phase.SUSPENDED, run=1, plan=PLAN, start_time=format_time(NOW - timedelta(days=2)))
    decision, c = step(ctx(st, suspend=True, deadline_seconds=60))
    assert isinstance(decision, Wait) and decision.status is None
    decision, c = step(later(c, 0, suspend=False))
    assert c.status.phase is Phase.PENDING
    decision, c = step(later(c, 30))
    assert isinstance(decision, Gate)  # 30s after the approval: within the 60s
    decision, c = step(later(c, 31))
    assert isinstance(decision, Finish) and c.status.reason == Reason.DEADLINE_EXCEEDED


def test_a_plan_that_cannot_be_resolved_is_tried_again_and_approval_still_works() -> None:
    st = RunStatus(phase=Phase.SUSPENDED, run=1, reason=Reason.AWAITING_APPROVAL)
    failed = PlanStatus(run=1, resolved_at=format_time(NOW), error="NotAuthorized: no ListComponentInstances")
    decision, c = step(ctx(st, suspend=True), Planned(1, failed))
    # A Retry: cluster events do not cut the wait short (each would list the cluster again).
    assert isinstance(decision, Retry) and decision.after == c.policy.plan_retry
    assert c.status.reason == Reason.PLAN_UNAVAILABLE and c.status.phase is Phase.SUSPENDED
    assert "NotAuthorized" in (c.status.message or "") and decision.event is not None
    decision, c = step(later(c, c.policy.plan_retry))
    assert isinstance(decision, Plan)
    again = failed.model_copy(update={"resolved_at": format_time(NOW + timedelta(seconds=30))})
    decision, c = step(c, Planned(1, again))
    assert isinstance(decision, Retry) and decision.status is None and decision.event is None
    decision, c = step(later(c, 5, suspend=False))
    assert c.status.phase is Phase.PENDING and c.status.approved_at is not None


def test_a_plan_for_another_run_or_after_approval_is_dropped() -> None:
    st = RunStatus(phase=Phase.SUSPENDED, run=2)
    assert decide(ctx(st, suspend=True), Planned(1, PLAN)).status is None
    assert decide(ctx(st, suspend=False), Planned(2, PLAN)).status is None


def test_a_rerun_of_an_object_still_suspended_plans_again() -> None:
    done = RunStatus(phase=Phase.FAILED, run=1, plan=PLAN, reason=Reason.WINDOW_EXPIRED)
    decision, c = step(ctx(done, suspend=True, rerun_value="again"))
    assert c.status.phase is Phase.SUSPENDED and c.status.run == 2 and c.status.plan is None
    decision, _ = step(c)
    assert isinstance(decision, Plan)


def test_before_not_before_the_run_is_scheduled_and_wakes_at_not_before() -> None:
    opens = NOW + timedelta(hours=2)
    decision, c = step(ctx(RunStatus(), not_before=opens, not_after=opens + timedelta(hours=1)))
    decision, c = step(c)
    assert isinstance(decision, Wait) and c.status.phase is Phase.SCHEDULED
    assert decision.after == 7200.0
    assert c.status.reason == Reason.WAITING_FOR_WINDOW and not holds_cluster(c.status)
    decision, _ = step(later(c, 3600))
    assert isinstance(decision, Wait) and decision.status is None and decision.after == 3600.0
    decision, c = step(later(c, 7200))
    assert c.status.phase is Phase.PENDING and decision.event is not None
    assert decision.event.reason == Reason.WINDOW_OPEN
    decision, _ = step(c)
    assert isinstance(decision, Gate)


def test_after_not_after_an_unstarted_run_ends_without_a_call() -> None:
    closed = NOW - timedelta(minutes=5)
    for phase in (Phase.PENDING, Phase.QUEUED, Phase.SCHEDULED, Phase.SUSPENDED):
        st = RunStatus(phase=phase, run=1)
        decision = decide(ctx(st, not_after=closed, suspend=phase is Phase.SUSPENDED), Look())
        assert isinstance(decision, Finish), phase
        assert decision.status is not None and decision.status.phase is Phase.FAILED
        assert decision.status.reason == Reason.WINDOW_EXPIRED
        assert "nothing was sent to EMR" in (decision.status.message or "")


def test_the_gitops_guard_a_recreated_object_past_its_window_does_nothing() -> None:
    c = ctx(RunStatus(), not_after=NOW - timedelta(days=30))
    decision, c = step(c)  # the first write is the verdict, with run 1 and its startTime
    assert isinstance(decision, Finish) and c.status.reason == Reason.WINDOW_EXPIRED
    assert c.status.run == 1 and c.status.start_time is not None
    rendered = with_conditions(c.status, generation=1, now=NOW)
    stalled = {x.type: x for x in rendered.conditions}["Stalled"]
    assert stalled.status == "True" and stalled.reason == Reason.WINDOW_EXPIRED
    decision, _ = step(later(c, 60))
    assert isinstance(decision, Nothing)


def test_the_window_closing_during_the_gates_ends_the_run() -> None:
    st = RunStatus(phase=Phase.PENDING, run=1)
    decision = decide(ctx(st, not_after=NOW), Gates(intent_id="i-1"))
    assert isinstance(decision, Finish) and decision.status is not None
    assert decision.status.reason == Reason.WINDOW_EXPIRED


def test_an_intent_withdrawn_because_the_window_closed_ends_the_run_next() -> None:
    st = RunStatus(phase=Phase.SUBMITTING, run=1, attempts=1, intent_id="i-1", submitted_at=format_time(NOW))
    c = ctx(st, not_after=NOW)
    why = window_problem(c)
    assert why is not None and "notAfter" in why
    decision, c = step(c, Blocked(1, 1, why=why, intent_id="i-1"))
    assert c.status.phase is Phase.PENDING and c.status.attempts == 0
    decision, c = step(c)
    assert isinstance(decision, Finish) and c.status.reason == Reason.WINDOW_EXPIRED


def test_a_submitted_run_is_followed_past_not_after() -> None:
    st = RunStatus(phase=Phase.RUNNING, run=1, attempts=1, operation_id="op-1")
    decision = decide(ctx(st, not_after=NOW - timedelta(hours=1)), Look())
    assert not isinstance(decision, Finish)
    assert window_problem(ctx(st, not_before=NOW, not_after=NOW + timedelta(seconds=1))) is None


def test_the_deadline_counts_from_not_before() -> None:
    opens = NOW + timedelta(minutes=10)
    st = RunStatus(phase=Phase.PENDING, run=1, start_time=format_time(NOW - timedelta(hours=1)))
    c = ctx(st, not_before=opens, deadline_seconds=120)
    decision, c = step(later(c, 600 + 100))
    assert c.status.phase is Phase.PENDING and isinstance(decision, Gate)
    decision, c = step(later(c, 21))
    assert isinstance(decision, Finish) and c.status.reason == Reason.DEADLINE_EXCEEDED


def test_unsuspending_a_started_run_only_records_the_new_generation() -> None:
    st = RunStatus(phase=Phase.RUNNING, run=1, attempts=1, operation_id="op-1", observed_generation=1)
    decision = decide(ctx(st, generation=2), Look())
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.observed_generation == 2
    assert decision.status.phase is Phase.RUNNING and decision.status.operation_id == "op-1"
    done = RunStatus(phase=Phase.SUCCEEDED, run=1, observed_generation=1)
    assert needs_attention(done, None, None, generation=2)
    assert not needs_attention(done.evolve(observed_generation=2), None, None, generation=2)
