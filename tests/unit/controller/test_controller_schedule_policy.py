"""ServiceActionSchedule: cron in a time zone and the firing decisions, on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emrops.api.conditions import with_conditions
from emrops.api.reasons import Reason
from emrops.api.schedule import SCHEDULE_LABEL, SCHEDULED_AT, ScheduleSpec, ScheduleStatus
from emrops.api.status import Phase, RunStatus, format_time
from emrops.controller.cron import Cron, CronError
from emrops.controller.schedule_policy import Child, Plan, decide, run_body, run_name

CREATED = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)  # a Monday
TEMPLATE = {"spec": {"regionId": "cn-hangzhou", "clusterId": "c-1", "actionName": "restart"}}


def spec(**fields: Any) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"schedule": "0 * * * *", "serviceActionTemplate": TEMPLATE, **fields})


def at(hours: float, *, minutes: float = 0) -> datetime:
    return datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=minutes)


def child(scheduled: datetime, phase: Phase | None, **changes: Any) -> Child:
    status = RunStatus() if phase is None else RunStatus(phase=phase, run=1, **changes)
    body = {
        "metadata": {
            "name": run_name("nightly", scheduled),
            "uid": f"u-{scheduled.timestamp():.0f}",
            "resourceVersion": "1",
            "annotations": {SCHEDULED_AT: format_time(scheduled)},
        },
        "status": with_conditions(status, generation=1, now=scheduled).to_dict() if phase else {},
    }
    return Child.of(body)


def plan(
    now: datetime, *, children: tuple[Child, ...] = (), status: ScheduleStatus | None = None, **fields: Any
) -> Plan:
    s = spec(**fields)
    return decide(
        name="nightly",
        created=CREATED,
        generation=1,
        spec=s,
        cron=Cron.parse(s.schedule, s.time_zone),
        status=status or ScheduleStatus(),
        children=children,
        now=now,
    )


def claimed(moment: datetime, *, confirmed: bool = True) -> ScheduleStatus:
    return ScheduleStatus(
        last_schedule_time=format_time(moment),
        last_scheduled_run=run_name("nightly", moment) if confirmed else None,
    )


# --- cron -------------------------------------------------------------------------------------


def test_cron_in_a_time_zone_and_its_macros() -> None:
    weekly = Cron.parse("0 3 * * 0", "Asia/Shanghai")  # Sunday 03:00 in UTC+8 = Saturday 19:00 UTC
    assert weekly.next_after(CREATED) == datetime(2026, 6, 6, 19, 0, tzinfo=UTC)
    assert weekly.latest_until(datetime(2026, 6, 6, 19, 0, tzinfo=UTC)) == datetime(
        2026, 6, 6, 19, 0, tzinfo=UTC
    )
    assert Cron.parse("@daily").next_after(CREATED) == datetime(2026, 6, 2, tzinfo=UTC)
    assert Cron.parse("@hourly").latest_until(at(5, minutes=59)) == at(5)


def test_cron_across_a_dst_change_fires_once() -> None:
    # Europe/Berlin: 02:30 does not exist on 2026-03-29 (fires at 03:00), 02:30 exists twice on 10-25.
    cron = Cron.parse("30 2 * * *", "Europe/Berlin")
    spring = cron.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC))
    spring_next = cron.next_after(spring)
    assert spring == datetime(2026, 3, 28, 1, 30, tzinfo=UTC) + timedelta(days=1) - timedelta(minutes=30)
    assert spring_next - spring > timedelta(hours=23)
    autumn = cron.next_after(datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert cron.next_after(autumn) - autumn >= timedelta(hours=24)


@pytest.mark.parametrize(
    ("schedule", "zone"),
    [
        ("0 3 * *", None),
        ("0 0 3 * * *", None),
        ("61 * * * *", None),
        ("TZ=UTC 0 3 * * *", None),
        ("@daily", "Mars/Olympus"),
    ],
)
def test_bad_schedules_and_zones_are_refused_with_a_reason(schedule: str, zone: str | None) -> None:
    with pytest.raises(CronError, match=r"spec\.(schedule|timeZone)"):
        Cron.parse(schedule, zone)


# --- firing -------------------------------------------------------------------------------------


def test_nothing_before_the_first_firing_then_exactly_the_due_one() -> None:
    early = plan(at(0, minutes=30))
    assert early.fire is None and early.wake_at == at(1)
    due = plan(at(1, minutes=0.5))
    assert due.fire is not None and due.fire.at == at(1) and due.fire.claim
    assert due.fire.name == f"nightly-{int(at(1).timestamp()) // 60}"
    assert due.status.last_schedule_time == format_time(at(1)) and due.wake_at == at(2)


def test_a_claimed_firing_does_not_fire_again() -> None:
    again = plan(at(1, minutes=20), status=claimed(at(1)))
    assert again.fire is None and again.wake_at == at(2)


def test_missed_firings_make_up_at_most_one_the_latest() -> None:
    # The operator was down from 01:00 to 05:10: 02:00..05:00 were missed; only 05:00 fires.
    late = plan(at(5, minutes=10), status=claimed(at(1)))
    assert late.fire is not None and late.fire.at == at(5)


def test_the_starting_deadline_skips_a_firing_too_late() -> None:
    assert plan(at(5, minutes=10), status=claimed(at(1)), startingDeadlineSeconds=300).fire is None
    inside = plan(at(5, minutes=4), status=claimed(at(1)), startingDeadlineSeconds=300).fire
    assert inside is not None and inside.at == at(5)


def test_forbid_waits_for_an_unfinished_or_unknown_run() -> None:
    for phase, reason in ((Phase.RUNNING, None), (Phase.UNKNOWN, Reason.OUTCOME_UNKNOWN), (None, None)):
        running = child(at(1), phase, reason=reason) if phase else child(at(1), None)
        waiting = plan(at(2, minutes=1), status=claimed(at(1)), children=(running,))
        assert waiting.fire is None, phase
        assert waiting.status.message and running.name in waiting.status.message
        assert [r.name for r in waiting.status.active] == [running.name]
    done = child(at(1), Phase.SUCCEEDED, finished_at=format_time(at(1, minutes=40)))
    fired = plan(at(2, minutes=1), status=claimed(at(1)), children=(done,))
    assert fired.fire is not None and fired.fire.at == at(2)
    assert fired.status.last_successful_time == format_time(at(1, minutes=40)) and fired.status.active == ()


def test_forbid_with_a_deadline_gives_up_a_firing_the_run_outlasted() -> None:
    running = child(at(1), Phase.RUNNING)
    waiting = plan(at(2, minutes=1), status=claimed(at(1)), children=(running,), startingDeadlineSeconds=600)
    assert waiting.wake_at == at(2, minutes=10) + timedelta(seconds=1)
    done = child(at(1), Phase.SUCCEEDED, finished_at=format_time(at(2, minutes=30)))
    assert (
        plan(at(2, minutes=30), status=claimed(at(1)), children=(done,), startingDeadlineSeconds=600).fire
        is None
    )


def test_allow_overlaps_and_replace_deletes_only_runs_that_never_called() -> None:
    queued, running = child(at(1), Phase.QUEUED), child(at(1), Phase.RUNNING)
    allowed = plan(at(2, minutes=1), status=claimed(at(1)), children=(running,), concurrencyPolicy="Allow")
    assert allowed.fire is not None and allowed.replace == ()
    replaced = plan(at(2, minutes=1), status=claimed(at(1)), children=(queued,), concurrencyPolicy="Replace")
    assert replaced.fire is not None and replaced.replace == (queued,)
    kept = plan(at(2, minutes=1), status=claimed(at(1)), children=(running,), concurrencyPolicy="Replace")
    assert kept.fire is None and kept.replace == ()


def test_suspend_fires_nothing() -> None:
    suspended = plan(at(3, minutes=1), status=claimed(at(1)), suspend=True)
    assert suspended.fire is None and suspended.wake_at is None


def test_history_limits_prune_the_oldest_finished_runs_never_active_or_unknown() -> None:
    succeeded = tuple(
        child(at(h), Phase.SUCCEEDED, finished_at=format_time(at(h, minutes=5))) for h in (1, 2, 3, 4)
    )
    failed = tuple(child(at(h, minutes=30), Phase.FAILED, reason=Reason.OPERATION_FAILED) for h in (1, 2))
    unknown = child(at(3, minutes=30), Phase.UNKNOWN, reason=Reason.OUTCOME_UNKNOWN)
    result = plan(at(4, minutes=10), status=claimed(at(4)), children=(*succeeded, *failed, unknown))
    # Default limits: 3 succeeded, 1 failed; the Unknown run is active (not acknowledged): kept.
    assert {c.name for c in result.prune} == {succeeded[0].name, failed[0].name}
    zero = plan(at(4, minutes=10), status=claimed(at(4)), children=succeeded, successfulRunsHistoryLimit=0)
    assert len(zero.prune) == 4


def test_a_claim_whose_run_never_appeared_is_created_and_a_seen_one_confirmed() -> None:
    lost = plan(at(1, minutes=1), status=claimed(at(1), confirmed=False))
    assert lost.fire is not None and lost.fire.at == at(1) and not lost.fire.claim
    seen = plan(
        at(1, minutes=1), status=claimed(at(1), confirmed=False), children=(child(at(1), Phase.PENDING),)
    )
    assert seen.fire is None and seen.status.last_scheduled_run == run_name("nightly", at(1))
    too_late = plan(at(1, minutes=10), status=claimed(at(1), confirmed=False), startingDeadlineSeconds=60)
    assert too_late.fire is None


def test_the_run_is_the_template_named_for_its_time_and_owned_by_the_schedule() -> None:
    schedule = {"metadata": {"name": "nightly", "namespace": "ops", "uid": "s-1"}}
    s = ScheduleSpec.model_validate(
        {"schedule": "@daily", "serviceActionTemplate": {"metadata": {"labels": {"team": "a"}}, **TEMPLATE}}
    )
    p = plan(at(1, minutes=1))
    assert p.fire is not None
    body = run_body(schedule, s, p.fire)
    meta = body["metadata"]
    assert meta["name"] == p.fire.name and meta["namespace"] == "ops"
    assert meta["labels"] == {"team": "a", SCHEDULE_LABEL: "nightly"}
    assert meta["annotations"][SCHEDULED_AT] == format_time(at(1))
    (owner,) = meta["ownerReferences"]
    assert owner["uid"] == "s-1" and owner["controller"] and owner["blockOwnerDeletion"]
    assert body["spec"] == TEMPLATE["spec"]


def test_a_create_error_stays_until_the_next_claim() -> None:
    refused = claimed(at(1)).model_copy(update={"last_create_error": "creating nightly-1 failed: invalid"})
    quiet = plan(at(1, minutes=30), status=refused)
    assert quiet.fire is None and quiet.status.last_create_error == refused.last_create_error
    nxt = plan(at(2, minutes=1), status=refused)
    assert nxt.fire is not None and nxt.status.last_create_error is None
