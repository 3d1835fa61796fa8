"""The ServiceAction status: a typed model of what the controller writes under ``status``.

The status is the run state machine's only memory (never kopf's progress records: docs/concepts.md), so
it round-trips exactly: ``RunStatus.from_dict(status_dict)`` reads it and
``RunStatus.to_dict()`` renders it back (camelCase, absent fields omitted), with the kstatus
conditions rendered from phase, reason and message by ``emrops.api.conditions``.

``reason`` and ``stalled`` are not fields of the CRD: they live in the conditions, and
``from_dict`` recovers them from there.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Phase(enum.StrEnum):
    SUSPENDED = "Suspended"  # spec.suspend: the plan is in status.plan; waiting for approval
    SCHEDULED = "Scheduled"  # waiting for spec.notBefore
    PENDING = "Pending"  # accepted; waiting to submit (backoff, credentials)
    QUEUED = "Queued"  # waiting for overlapping runs on the same cluster
    SUBMITTING = "Submitting"  # intent recorded; RunApplicationAction is being called
    RUNNING = "Running"  # EMR accepted it; following the operation
    SUCCEEDED = "Succeeded"  # the operation COMPLETED
    FAILED = "Failed"  # the operation FAILED, or EMR refused the call, or the deadline passed
    UNKNOWN = "Unknown"  # the call's outcome is unknown; a person must look

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def at_rest(self) -> bool:
        """Unfinished, but waiting on purpose (an approval, a time): nothing is in progress."""
        return self in AT_REST


FINISHED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.UNKNOWN})
AT_REST = frozenset({Phase.SUSPENDED, Phase.SCHEDULED})


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as Kubernetes writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_time_precise(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: for times that order events within one second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    """The moment an RFC 3339 string names; None for None, empty or malformed text."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class AbnInstanceStatus(_StatusModel):
    node_id: str = ""
    node_name: str = ""


class StateChangeReasonStatus(_StatusModel):
    code: str | None = None
    message: str | None = None


class OperationStatus(_StatusModel):
    state: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    state_change_reason: StateChangeReasonStatus | None = None


class ProgressStatus(_StatusModel):
    total: int = 0
    done: int = 0
    failed: int = 0
    message: str | None = None


class LastError(_StatusModel):
    code: str
    message: str
    request_id: str | None = None
    http_status: int | None = None
    time: str | None = None


class HistoryEntry(_StatusModel):
    run: int
    run_requested_at: str | None = None
    phase: str | None = None
    operation_id: str | None = None
    request_id: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    error_code: str | None = None


class PlannedInstance(_StatusModel):
    application_name: str
    component_name: str
    node_id: str
    node_name: str | None = None
    #: ComponentInstanceState as ListComponentInstances reported it.
    state: str | None = None
    #: NodeState as ListNodes reported it (Running when healthy).
    node_state: str | None = None
    #: The batch (1-based) it falls in, in EMR's listing order.
    batch: int | None = None


class PlanStatus(_StatusModel):
    """What a suspended run would do, resolved without calling RunApplicationAction."""

    #: The run this plan is for (a re-run resolves its own).
    run: int
    resolved_at: str | None = None
    #: Why the plan could not be resolved (it is tried again); the other fields are then absent.
    error: str | None = None
    instance_count: int | None = None
    #: The first instances in batch order (at most ``PLAN_LIST_LIMIT``).
    instances: tuple[PlannedInstance, ...] | None = None
    batch_count: int | None = None
    batch_size: int | None = None
    interval: int | None = None
    execute_strategy: str | None = None
    abnormal_count: int | None = None
    #: The first instances on nodes that are not Running or in a failed state (at most the limit).
    abnormal_instances: tuple[PlannedInstance, ...] | None = None
    #: A rough estimate of the whole run's duration (see emrops.controller.plan).
    estimated_seconds: int | None = None


class Condition(_StatusModel):
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""
    last_transition_time: str
    observed_generation: int | None = None


class RunStatus(_StatusModel):
    """One ServiceAction's status. Immutable: derive a new one with ``evolve(field=value, ...)``."""

    observed_generation: int | None = None
    phase: Phase | None = None
    message: str | None = None
    operation_id: str | None = None
    request_id: str | None = None
    abn_instances: tuple[AbnInstanceStatus, ...] | None = None
    operation: OperationStatus | None = None
    progress: ProgressStatus | None = None
    attempts: int | None = None
    #: Who wrote the current attempt's intent (a random id per attempt and writer).
    intent_id: str | None = None
    submitted_at: str | None = None
    finished_at: str | None = None
    start_time: str | None = None
    next_attempt_at: str | None = None
    last_error: LastError | None = None
    run_requested_at: str | None = None
    run: int | None = None
    waiting_for: tuple[str, ...] | None = None
    #: Attempts of this run that failed with a bounded-retry error (InvokeEcmError).
    bounded_errors: int | None = None
    #: The ``emrops.io/acknowledged-at`` value handled last (kept across runs, like runRequestedAt).
    acknowledged_at: str | None = None
    #: The run that value released from the cluster's queue (see ``holds_cluster``).
    acknowledged_run: int | None = None
    history: tuple[HistoryEntry, ...] | None = None
    #: What a suspended run would do (kept after approval, replaced by a suspended re-run's).
    plan: PlanStatus | None = None
    #: When spec.suspend went false for the current run (activeDeadlineSeconds counts from it).
    approved_at: str | None = None
    conditions: tuple[Condition, ...] = ()
    # Not CRD fields: carried in the conditions (see module docstring).
    reason: str | None = Field(default=None, exclude=True)
    stalled: bool = Field(default=False, exclude=True)

    @classmethod
    def from_dict(cls, status: Mapping[str, Any] | None) -> RunStatus:
        """Read a ``status`` dict; reason and stalled come back from its conditions."""
        data = dict(status or {})
        data.pop("reason", None)
        data.pop("stalled", None)
        parsed = cls.model_validate(data)
        by_type = {c.type: c for c in parsed.conditions}
        stalled = by_type.get("Stalled")
        reconciling = by_type.get("Reconciling")
        ready = by_type.get("Ready")
        reason: str | None = None
        if stalled is not None and stalled.status == "True":
            reason = stalled.reason
        elif reconciling is not None and reconciling.status == "True":
            reason = reconciling.reason
        elif ready is not None:
            reason = ready.reason
        return parsed.model_copy(
            update={"reason": reason, "stalled": stalled is not None and stalled.status == "True"}
        )

    def evolve(self, **changes: Unpack[StatusChanges]) -> RunStatus:
        """A copy with ``changes``: keyword arguments, so mypy refuses a misspelt or mistyped field."""
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:  # only reachable from untyped callers
            raise TypeError(f"not RunStatus fields: {sorted(unknown)}")
        return self.model_copy(update=dict(changes))

    def to_dict(self) -> dict[str, Any]:
        """The ``status`` dict to write: camelCase, None-free, conditions as they are."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    @property
    def finished(self) -> bool:
        return self.phase is not None and self.phase.finished


class StatusChanges(TypedDict, total=False):
    """The fields of ``RunStatus.evolve``: every field of ``RunStatus``, each optional."""

    observed_generation: int | None
    phase: Phase | None
    message: str | None
    operation_id: str | None
    request_id: str | None
    abn_instances: tuple[AbnInstanceStatus, ...] | None
    operation: OperationStatus | None
    progress: ProgressStatus | None
    attempts: int | None
    intent_id: str | None
    submitted_at: str | None
    finished_at: str | None
    start_time: str | None
    next_attempt_at: str | None
    last_error: LastError | None
    run_requested_at: str | None
    run: int | None
    waiting_for: tuple[str, ...] | None
    bounded_errors: int | None
    acknowledged_at: str | None
    acknowledged_run: int | None
    history: tuple[HistoryEntry, ...] | None
    plan: PlanStatus | None
    approved_at: str | None
    conditions: tuple[Condition, ...]
    reason: str | None
    stalled: bool
