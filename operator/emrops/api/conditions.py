"""The kstatus conditions (Ready, Reconciling, Stalled), computed in one place.

``render_conditions`` derives the whole set from a status' phase, reason, message and stalled
flag, so no handler ever edits a condition by hand. What ``kubectl wait``, Flux and Argo CD read:

====================================  =======  ===========  =======
phase                                 Ready    Reconciling  Stalled
====================================  =======  ===========  =======
Pending, Queued, Submitting, Running  False    True         False
Suspended, Scheduled (at rest)        False    False        False
Running, stalled (HUMAN_PROCESSING)   False    False        True
Succeeded                             True     False        False
Failed, Unknown                       False    False        True
====================================  =======  ===========  =======

Reconciling and Stalled are "abnormal-true" conditions: both are always present (False when they
do not apply), as is Ready, so a reader never has to guess from a missing condition. A run at
rest (waiting for its approval or its time window) is neither reconciling nor stalled: nothing is
in progress and nothing is wrong (Argo CD shows it Suspended; deploy/ has the health checks). Each carries
``observedGeneration``; ``lastTransitionTime`` changes only when the condition's status changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from emrops.api.reasons import Reason
from emrops.api.status import Condition, Phase, RunStatus, format_time

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
TYPES = (READY, RECONCILING, STALLED)

_DEFAULT_REASONS: dict[Phase, str] = {
    Phase.SUSPENDED: Reason.AWAITING_APPROVAL,
    Phase.SCHEDULED: Reason.WAITING_FOR_WINDOW,
    Phase.PENDING: Reason.PENDING,
    Phase.QUEUED: Reason.QUEUED,
    Phase.SUBMITTING: Reason.SUBMITTING,
    Phase.RUNNING: Reason.RUNNING,
    Phase.SUCCEEDED: Reason.SUCCEEDED,
    Phase.FAILED: Reason.FAILED,
    Phase.UNKNOWN: Reason.OUTCOME_UNKNOWN,
}


def stalled_in(status: Mapping[str, Any] | None) -> bool:
    """Whether a written ``status`` dict carries Stalled=True (cheap: no model parse per watch event)."""
    for condition in (status or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == STALLED:
            return condition.get("status") == "True"
    return False


def _flag(value: bool) -> str:
    return "True" if value else "False"


def render_conditions(
    *,
    phase: Phase | None,
    reason: str | None,
    message: str | None,
    stalled: bool,
    generation: int | None,
    previous: Iterable[Condition],
    now: datetime,
) -> tuple[Condition, ...]:
    """The three conditions for this phase, keeping ``lastTransitionTime`` where status held."""
    phase = phase or Phase.PENDING
    reason = reason or _DEFAULT_REASONS[phase]
    message = message or ""
    is_stalled = stalled or phase in (Phase.FAILED, Phase.UNKNOWN)
    ready = phase is Phase.SUCCEEDED
    reconciling = not ready and not is_stalled and not phase.finished and not phase.at_rest

    wanted = {
        READY: (ready, "Succeeded" if ready else reason, message),
        RECONCILING: (reconciling, reason if reconciling else _idle_reason(phase, is_stalled), message),
        STALLED: (is_stalled, reason if is_stalled else "NotStalled", message if is_stalled else ""),
    }
    before = {c.type: c for c in previous}
    stamp = format_time(now)
    rendered: list[Condition] = []
    for kind in TYPES:
        value, why, text = wanted[kind]
        status = _flag(value)
        old = before.get(kind)
        transition = old.last_transition_time if old is not None and old.status == status else stamp
        rendered.append(
            Condition(
                type=kind,
                status=status,
                reason=why,
                message=text if kind != RECONCILING or value else "",
                last_transition_time=transition,
                observed_generation=generation,
            )
        )
    return tuple(rendered)


def _idle_reason(phase: Phase, stalled: bool) -> str:
    if stalled:
        return "Stalled"
    if phase.at_rest:
        return phase.value
    return _DEFAULT_REASONS[phase] if phase.finished else "Idle"


def with_conditions(status: RunStatus, *, generation: int | None, now: datetime) -> RunStatus:
    """``status`` with observedGeneration and its conditions brought up to date."""
    conditions = render_conditions(
        phase=status.phase,
        reason=status.reason,
        message=status.message,
        stalled=status.stalled,
        generation=generation,
        previous=status.conditions,
        now=now,
    )
    return status.model_copy(update={"conditions": conditions, "observed_generation": generation})
