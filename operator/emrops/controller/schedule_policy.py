"""What a ServiceActionSchedule does next: a pure function of its spec, status, runs and the time.

``decide`` returns a ``Plan``: the status to write, at most one run to create (``Fire``), runs to
delete for ``Replace`` and for the history limits, and when to look again. The I/O around it is
``controller.schedules``.

**Which firing.** As a CronJob: the latest scheduled time at or before now that is later than
``status.lastScheduleTime`` (or the schedule's creation) fires, once; earlier ones missed while the
operator was down are not made up (at most one catch-up). With ``startingDeadlineSeconds``, a
firing more than that late is skipped altogether.

**No duplicate run.** A run's name is the schedule's name and the scheduled time in Unix minutes,
so two creates for one time collide (409) instead of making two runs. A run deleted since (history
limits, a TTL) could be created again by a process that read an old schedule, so the firing is
first *claimed*: ``status.lastScheduleTime`` is written, conditioned on the schedule's
resourceVersion, before the create; of two processes only one claim lands. The create is
confirmed afterwards in ``status.lastScheduledRun``; a claim without a confirmation and without
its run (the process stopped between the two) is created on the next look (``Fire.claim`` False).

**Concurrency.** ``Forbid``: while a run is active (unfinished, or Unknown / followed past its
deadline and not acknowledged: ``machine.holds_cluster``) a due firing waits, unclaimed, until the
run ends or the starting deadline passes. ``Replace``: active runs that have not called EMR
(no phase yet, Suspended, Scheduled, Pending, Queued) are deleted for the new one; a run that may
have called EMR is never deleted (that would lose the only record of a live operation, and EMR
cannot cancel it), so the firing then waits as with Forbid. ``Allow``: runs start regardless (the
per-cluster queue still keeps overlapping runs apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emrops.api.constants import API_VERSION, KIND
from emrops.api.schedule import (
    SCHEDULE_KIND,
    SCHEDULE_LABEL,
    SCHEDULED_AT,
    ConcurrencyPolicy,
    RunRef,
    ScheduleSpec,
    ScheduleStatus,
)
from emrops.api.status import Phase, RunStatus, format_time, parse_time
from emrops.controller import machine
from emrops.controller.cron import Cron

#: Phases of a run that has not called RunApplicationAction: ``Replace`` may delete it.
REPLACEABLE = frozenset({None, Phase.PENDING, Phase.QUEUED, Phase.SUSPENDED, Phase.SCHEDULED})


@dataclass(frozen=True)
class Child:
    """One run the schedule created, as listed."""

    name: str
    uid: str
    resource_version: str
    scheduled_at: datetime | None
    status: RunStatus

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Child:
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        return cls(
            name=str(meta.get("name")),
            uid=str(meta.get("uid", "")),
            resource_version=str(meta.get("resourceVersion", "")),
            scheduled_at=parse_time(annotations.get(SCHEDULED_AT))
            or parse_time(meta.get("creationTimestamp")),
            status=RunStatus.from_dict(body.get("status")),
        )

    @property
    def active(self) -> bool:
        return not self.status.finished or machine.holds_cluster(self.status)

    @property
    def succeeded(self) -> bool:
        return not self.active and self.status.phase is Phase.SUCCEEDED


@dataclass(frozen=True)
class Fire:
    at: datetime
    name: str
    #: Write the claim (status.lastScheduleTime) first; False when the status already holds it.
    claim: bool


@dataclass(frozen=True)
class Plan:
    status: ScheduleStatus
    fire: Fire | None = None
    replace: tuple[Child, ...] = ()
    prune: tuple[Child, ...] = ()
    #: When to look again at the latest (a run's end or a spec change wakes it earlier).
    wake_at: datetime | None = None


def run_name(schedule: str, at: datetime) -> str:
    """The run for the firing at ``at``: one name per scheduled minute."""
    return f"{schedule}-{int(at.timestamp()) // 60}"


def _by_time(children: Iterable[Child]) -> list[Child]:
    return sorted(children, key=lambda c: (c.scheduled_at.timestamp() if c.scheduled_at else 0.0, c.name))


def _pruned(children: list[Child], limit: int) -> tuple[Child, ...]:
    """The oldest beyond ``limit`` (children sorted oldest first)."""
    return tuple(children[: max(0, len(children) - limit)])


def _last_success(status: ScheduleStatus, children: Iterable[Child]) -> str | None:
    moments = [parse_time(status.last_successful_time)]
    moments += [parse_time(c.status.finished_at) for c in children if c.succeeded]
    known = [m for m in moments if m is not None]
    return format_time(max(known)) if known else None


def decide(
    *,
    name: str,
    created: datetime,
    generation: int | None,
    spec: ScheduleSpec,
    cron: Cron,
    status: ScheduleStatus,
    children: Iterable[Child],
    now: datetime,
) -> Plan:
    runs = _by_time(children)
    active = [c for c in runs if c.active]
    base = status.model_copy(
        update={
            "observed_generation": generation,
            "active": tuple(RunRef(name=c.name, uid=c.uid) for c in active),
            "last_successful_time": _last_success(status, runs),
        }
    )
    prune = _pruned([c for c in runs if c.succeeded], spec.successful_runs_history_limit) + _pruned(
        [c for c in runs if not c.active and not c.succeeded], spec.failed_runs_history_limit
    )
    deadline = (
        timedelta(seconds=spec.starting_deadline_seconds)
        if spec.starting_deadline_seconds is not None
        else None
    )
    names = {c.name for c in runs}
    claimed = parse_time(status.last_schedule_time)

    if claimed is not None and status.last_scheduled_run != run_name(name, claimed):
        claimed_run = run_name(name, claimed)
        if claimed_run in names:
            base = base.model_copy(update={"last_scheduled_run": claimed_run})
        elif not spec.suspend and (deadline is None or now <= claimed + deadline):
            # Claimed, but the run was never seen: the claimer stopped before creating it.
            return Plan(base, fire=Fire(claimed, claimed_run, claim=False), prune=prune)

    if spec.suspend:
        return Plan(base.model_copy(update={"message": "suspended: no new runs"}), prune=prune)

    earliest = claimed or created
    if deadline is not None and earliest < now - deadline:
        earliest = now - deadline  # firings older than the deadline are skipped, not made up
    latest = cron.latest_until(now)
    following = cron.next_after(now)
    if latest <= earliest:
        return Plan(base.model_copy(update={"message": None}), prune=prune, wake_at=following)

    blocking = active
    replace: tuple[Child, ...] = ()
    if spec.concurrency_policy is ConcurrencyPolicy.ALLOW:
        blocking = []
    elif spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
        replace = tuple(c for c in active if c.status.phase in REPLACEABLE)
        blocking = [c for c in active if c.status.phase not in REPLACEABLE]
    if blocking:
        why = (
            f"the run due at {format_time(latest)} waits: {blocking[-1].name} has not finished "
            f"(concurrencyPolicy {spec.concurrency_policy.value})"
        )
        wake = following if deadline is None else min(following, latest + deadline + timedelta(seconds=1))
        return Plan(base.model_copy(update={"message": why}), prune=prune, wake_at=wake)

    claim = base.model_copy(
        update={"last_schedule_time": format_time(latest), "message": None, "last_create_error": None}
    )
    return Plan(
        claim,
        fire=Fire(latest, run_name(name, latest), claim=True),
        replace=replace,
        prune=prune,
        wake_at=following,
    )


def run_body(schedule: Mapping[str, Any], spec: ScheduleSpec, fire: Fire) -> dict[str, Any]:
    """The ServiceAction for ``fire``: the template, named for its time, owned by the schedule."""
    meta = schedule.get("metadata") or {}
    template = spec.service_action_template
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": fire.name,
            "namespace": meta.get("namespace"),
            "labels": {**template.metadata.labels, SCHEDULE_LABEL: str(meta.get("name"))},
            "annotations": {**template.metadata.annotations, SCHEDULED_AT: format_time(fire.at)},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": SCHEDULE_KIND,
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": dict(template.spec),
    }
