"""Cron expressions in a time zone: when a ``ServiceActionSchedule`` fires. Pure (no clock).

The expressions are those of a Kubernetes CronJob: five fields (minute, hour, day of month,
month, day of week) or a macro (``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually``). A ``TZ=``/``CRON_TZ=`` prefix is refused as Kubernetes refuses it:
the zone is its own field (``spec.timeZone``, an IANA name; UTC when unset). Matching is
``cronsim``'s (Debian cron's rules: day of month and day of week are or-ed unless one is ``*``;
on a DST change a time that does not exist fires at the first instant after it, one that
exists twice fires once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """The schedule or the time zone cannot be used; the message says why."""


@dataclass(frozen=True)
class Cron:
    expression: str
    zone: ZoneInfo

    @classmethod
    def parse(cls, schedule: str, time_zone: str | None = None) -> Cron:
        text = " ".join(schedule.split())
        if text.upper().startswith(("TZ=", "CRON_TZ=")):
            raise CronError("the time zone goes in spec.timeZone, not in spec.schedule (TZ=, CRON_TZ=)")
        expression = MACROS.get(text.lower(), text)
        if len(expression.split()) != 5:
            raise CronError(
                f"spec.schedule {schedule!r}: five fields (minute hour day month weekday) or a macro"
            )
        zone = _zone(time_zone)
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            raise CronError(f"spec.schedule {schedule!r}: {exc}") from None
        return cls(expression, zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after ``moment`` (UTC)."""
        return next(CronSim(self.expression, moment.astimezone(self.zone))).astimezone(UTC)

    def latest_until(self, moment: datetime) -> datetime:
        """The last firing at or before ``moment`` (UTC)."""
        # cronsim's reverse iteration is inclusive of a start with microseconds (it drops them as
        # its first step), so a start one microsecond later includes ``moment`` itself.
        start = moment.astimezone(self.zone).replace(microsecond=0) + timedelta(microseconds=1)
        return next(CronSim(self.expression, start, reverse=True)).astimezone(UTC)


def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"spec.timeZone {name!r} is not a known IANA time zone (e.g. Asia/Shanghai)"
        ) from None
