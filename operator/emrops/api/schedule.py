"""The ServiceActionSchedule spec and status: a cron schedule that creates ServiceActions.

The shapes follow a Kubernetes CronJob's (schedule, timeZone, concurrencyPolicy,
startingDeadlineSeconds, suspend, history limits; lastScheduleTime, lastSuccessfulTime, active),
with ``serviceActionTemplate`` in place of ``jobTemplate``. The template's ``spec`` is a
ServiceAction spec, validated by the ServiceAction CRD when a run is created from it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from emrops.api.constants import GROUP

SCHEDULE_KIND = "ServiceActionSchedule"
SCHEDULE_PLURAL = "serviceactionschedules"

#: Label on every run a schedule created: the schedule's name (the runs are listed by it).
SCHEDULE_LABEL = f"{GROUP}/schedule"
#: Annotation on every run a schedule created: the scheduled time it stands for (RFC 3339).
SCHEDULED_AT = f"{GROUP}/scheduled-at"
#: Longest schedule name: a run's name adds "-" and the scheduled time in Unix minutes (8 digits
#: until the year 2160), and names used as label values must fit 63 characters.
NAME_LIMIT = 52


class ConcurrencyPolicy(enum.StrEnum):
    FORBID = "Forbid"  # no new run while the previous one is unfinished (or Unknown)
    ALLOW = "Allow"  # runs may overlap (the per-cluster queue still orders overlapping targets)
    REPLACE = "Replace"  # a run that has not called EMR yet is deleted for the new one


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class TemplateMetadata(_Model):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ServiceActionTemplate(_Model):
    metadata: TemplateMetadata = Field(default_factory=TemplateMetadata)
    spec: dict[str, Any]


class ScheduleSpec(_Model):
    schedule: str
    time_zone: str | None = None
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline_seconds: int | None = Field(default=None, ge=0)
    suspend: bool = False
    successful_runs_history_limit: int = Field(default=3, ge=0)
    failed_runs_history_limit: int = Field(default=1, ge=0)
    service_action_template: ServiceActionTemplate

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ScheduleSpec:
        """The spec of a whole object (raises ``pydantic.ValidationError`` when malformed)."""
        return cls.model_validate(body.get("spec") or {})


class RunRef(_Model):
    name: str
    uid: str | None = None


class ScheduleStatus(_Model):
    observed_generation: int | None = None
    #: The latest scheduled time claimed for a run (written before the run is created).
    last_schedule_time: str | None = None
    #: The run created for ``last_schedule_time``, once its creation is confirmed.
    last_scheduled_run: str | None = None
    #: When the latest run that succeeded finished.
    last_successful_time: str | None = None
    #: Runs that are unfinished, or Unknown / followed and not yet acknowledged.
    active: tuple[RunRef, ...] = ()
    #: Why the latest due firing did not create a run (Forbid, suspend, a bad schedule).
    message: str | None = None
    #: Why the run of ``last_schedule_time`` could not be created (cleared by the next claim).
    last_create_error: str | None = None

    @classmethod
    def from_dict(cls, status: Mapping[str, Any] | None) -> ScheduleStatus:
        return cls.model_validate(dict(status or {}))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
