"""The kstatus condition set computed from phase, reason, message and the stalled flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emrops.api.conditions import render_conditions, with_conditions
from emrops.api.status import Condition, Phase, RunStatus

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _by_type(conditions: tuple[Condition, ...]) -> dict[str, Condition]:
    return {c.type: c for c in conditions}


@pytest.mark.parametrize(
    ("phase", "reason", "stalled", "ready", "reconciling", "is_stalled", "expected_reason"),
    [
        (Phase.PENDING, None, False, "False", "True", "False", "Pending"),
        (Phase.PENDING, "Throttled", False, "False", "True", "False", "Throttled"),
        (Phase.PENDING, "CredentialsMissing", False, "False", "True", "False", "CredentialsMissing"),
        (Phase.QUEUED, "Queued", False, "False", "True", "False", "Queued"),
        (Phase.SUBMITTING, "Submitting", False, "False", "True", "False", "Submitting"),
        (Phase.RUNNING, "Running", False, "False", "True", "False", "Running"),
        (Phase.RUNNING, "HumanProcessing", True, "False", "False", "True", "HumanProcessing"),
        (Phase.SUCCEEDED, "Succeeded", False, "True", "False", "False", "Succeeded"),
        (Phase.FAILED, "NotAuthorized", False, "False", "False", "True", "NotAuthorized"),
        (Phase.UNKNOWN, None, False, "False", "False", "True", "OutcomeUnknown"),
        (None, None, False, "False", "True", "False", "Pending"),
    ],
)
def test_condition_table(
    phase: Phase | None,
    reason: str | None,
    stalled: bool,
    ready: str,
    reconciling: str,
    is_stalled: str,
    expected_reason: str,
) -> None:
    conds = _by_type(
        render_conditions(
            phase=phase, reason=reason, message="msg", stalled=stalled, generation=3, previous=(), now=T0
        )
    )
    assert set(conds) == {"Ready", "Reconciling", "Stalled"}
    assert (conds["Ready"].status, conds["Reconciling"].status, conds["Stalled"].status) == (
        ready,
        reconciling,
        is_stalled,
    )
    assert all(c.observed_generation == 3 for c in conds.values())
    # The condition that is True (or Ready, when none is) carries the phase's reason and message.
    active = [c for c in conds.values() if c.status == "True"]
    assert len(active) == 1
    assert active[0].reason == ("Succeeded" if phase is Phase.SUCCEEDED else expected_reason)
    assert active[0].message == "msg"


def test_last_transition_time_kept_while_status_holds() -> None:
    first = with_conditions(
        RunStatus(phase=Phase.PENDING, reason="Pending", message="a"), generation=1, now=T0
    )
    later = T0 + timedelta(minutes=5)
    running = with_conditions(
        first.model_copy(update={"phase": Phase.RUNNING, "reason": "Running", "message": "b"}),
        generation=1,
        now=later,
    )
    conds = _by_type(running.conditions)
    # Still Ready=False / Reconciling=True / Stalled=False: transition times unchanged ...
    assert {c.last_transition_time for c in conds.values()} == {"2025-01-01T00:00:00Z"}
    assert conds["Reconciling"].reason == "Running" and conds["Reconciling"].message == "b"
    done = with_conditions(
        running.model_copy(update={"phase": Phase.SUCCEEDED, "reason": "Succeeded"}), generation=2, now=later
    )
    conds = _by_type(done.conditions)
    # ... but those that flip get the new time, and observedGeneration follows.
    assert conds["Ready"].last_transition_time == "2025-01-01T00:05:00Z"
    assert conds["Reconciling"].last_transition_time == "2025-01-01T00:05:00Z"
    assert conds["Stalled"].last_transition_time == "2025-01-01T00:00:00Z"
    assert done.observed_generation == 2 and conds["Ready"].observed_generation == 2


def test_rendering_twice_is_stable() -> None:
    status = with_conditions(
        RunStatus(phase=Phase.FAILED, reason="NotAuthorized", message="m"), generation=1, now=T0
    )
    again = with_conditions(status, generation=1, now=T0 + timedelta(hours=1))
    assert again == status
