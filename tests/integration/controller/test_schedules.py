"""ServiceActionSchedule end to end: the real apiserver, the emulator and two `emrops run` processes.

Two operator processes without leader election watch the namespace for the whole module, so every
firing is raced by both: the claim (status.lastScheduleTime, written conditionally before the
create) and the run's name per scheduled minute must leave exactly one run and one
RunApplicationAction per firing. Also: the run is owned by the schedule, the status records it,
and the history limits prune the oldest finished runs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from emrops.api.schedule import SCHEDULE_LABEL, SCHEDULED_AT
from emrops.api.status import format_time, parse_time
from emrops.controller.schedule_policy import run_name
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import EXAMPLES, component_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration


EVERY_MINUTE = "every-minute"
TEMPLATE = tagged_action(EVERY_MINUTE, "restart", component_scope("HIVE", "HiveServer2"))["spec"]


@pytest.fixture(scope="module", autouse=True)
def operator(kube: Kube, operator_factory: OperatorFactory) -> None:
    kube.create_secret()
    operator_factory()
    operator_factory()
    # Created first, so the wait for its first firing (the next whole minute) overlaps the other
    # tests. Beside it, a schedule whose template the ServiceAction CRD refuses (no such action).
    kube.create(
        schedule(EVERY_MINUTE, "* * * * *", TEMPLATE),
        schedule("refused", "* * * * *", {**TEMPLATE, "actionName": "reboot"}),
    )


def schedule(name: str, cron: str, template_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceActionSchedule",
        "metadata": {"name": name},
        "spec": {
            "schedule": cron,
            "serviceActionTemplate": {"metadata": {"labels": {"team": "ops"}}, "spec": template_spec},
            **spec,
        },
    }


def get_schedule(kube: Kube, name: str) -> dict[str, Any]:
    out = kube.kubectl("get", f"serviceactionschedules.emrops.io/{name}", "-o", "json").stdout
    return dict(json.loads(out))


def runs_of(objs: dict[str, dict[str, Any]], name: str) -> dict[str, dict[str, Any]]:
    return {n: o for n, o in objs.items() if (o["metadata"].get("labels") or {}).get(SCHEDULE_LABEL) == name}


def test_history_limits_prune_the_oldest_finished_runs(kube: Kube, module_emulator: Emulator) -> None:
    """Runs owned by the schedule that ended Failed (a window already passed: no EMR call) are
    pruned down to failedRunsHistoryLimit, oldest first by scheduled time."""
    name = "yearly"
    kube.create(
        schedule(
            name,
            "0 0 1 1 *",
            {**tagged_action(name, "restart", component_scope("HIVE", "HiveServer2"))["spec"]},
            failedRunsHistoryLimit=2,
        )
    )
    owner = get_schedule(kube, name)["metadata"]
    past = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    runs = []
    for age in range(4, 0, -1):  # scheduled 4, 3, 2 and 1 hours before `past`
        at = past - timedelta(hours=age)
        run = tagged_action(
            run_name(name, at), "restart", component_scope("HIVE", "HiveServer2"), notAfter=format_time(past)
        )
        run["metadata"].update(
            labels={SCHEDULE_LABEL: name},
            annotations={SCHEDULED_AT: format_time(at)},
            ownerReferences=[
                {
                    "apiVersion": "emrops.io/v1alpha1",
                    "kind": "ServiceActionSchedule",
                    "name": name,
                    "uid": owner["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        )
        runs.append(run)
    kube.create(*runs)
    names = [r["metadata"]["name"] for r in runs]
    objs = kube.wait_until(
        "the two oldest runs pruned, the two newest kept",
        lambda o: (
            not set(names[:2]) & set(o)
            and all((o.get(n, {}).get("status") or {}).get("phase") == "Failed" for n in names[2:])
        ),
        timeout=90,
    )
    assert all(summarize(objs[n])["phase"] == "Failed" for n in names[2:])
    assert module_emulator.ok_runs(name) == []
    status = get_schedule(kube, name).get("status") or {}
    assert status.get("active", []) == [] and "lastScheduleTime" not in status


def test_a_schedule_the_crd_refuses(kube: Kube) -> None:
    valid = tagged_action("t", "restart", component_scope("HIVE", "HiveServer2"))["spec"]
    bad = kube.kubectl(
        "create", "-f", "-", input=json.dumps(schedule("x" * 53, "@daily", valid)), check=False
    )
    assert bad.returncode != 0 and "52" in bad.stderr, bad.stderr
    tz = kube.kubectl(
        "create",
        "-f",
        "-",
        input=json.dumps(
            schedule(
                "tz-in-schedule",
                "TZ=UTC 0 3 * * *",
                valid,
            )
        ),
        check=False,
    )
    assert tz.returncode != 0 and "spec.timeZone" in tz.stderr, tz.stderr


def test_the_schedule_example_is_accepted_unchanged(kube: Kube) -> None:
    path = EXAMPLES / "weekly-rolling-restart-schedule.yaml"
    manifest = yaml.safe_load(path.read_text())
    kube.kubectl("apply", "--server-side", "--validate=strict", "-f", str(path))
    stored = get_schedule(kube, manifest["metadata"]["name"])
    assert stored["spec"] == manifest["spec"]
    table = kube.kubectl("get", "svcactsched").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    row = next(line.split() for line in table[1:] if line.startswith(manifest["metadata"]["name"]))
    assert row[1:6] == ["0", "3", "*", "*", "0"] and row[6:8] == ["Asia/Shanghai", "false"]


def test_a_firing_creates_one_owned_run_even_with_two_operators(
    kube: Kube, module_emulator: Emulator
) -> None:
    name, template = EVERY_MINUTE, TEMPLATE
    created = get_schedule(kube, name)
    # The first firing is the next whole minute after the creation.
    first = (parse_time(created["metadata"]["creationTimestamp"]) or datetime.now(UTC)).replace(second=0)
    first += timedelta(minutes=1)
    expected = run_name(name, first)

    objs = kube.wait_until(
        f"{expected} to succeed",
        lambda o: (o.get(expected, {}).get("status") or {}).get("phase") == "Succeeded",
        timeout=150,
    )
    run = objs[expected]
    (owner,) = run["metadata"]["ownerReferences"]
    assert owner["kind"] == "ServiceActionSchedule" and owner["uid"] == created["metadata"]["uid"]
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    assert run["metadata"]["labels"] == {"team": "ops", SCHEDULE_LABEL: name}
    assert run["metadata"]["annotations"][SCHEDULED_AT] == format_time(first)
    assert run["spec"] == template

    deadline = time.monotonic() + 30
    while True:
        status = get_schedule(kube, name).get("status") or {}
        if status.get("lastSuccessfulTime") and not status.get("active"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["lastScheduleTime"] == format_time(first)
    assert status["lastScheduledRun"] == expected
    # Both processes raced every firing so far: one run and one call per scheduled minute.
    runs = runs_of(kube.all(), name)
    minutes = {r["metadata"]["annotations"][SCHEDULED_AT] for r in runs.values()}
    assert len(runs) == len(minutes), sorted(runs)
    calls = module_emulator.ok_runs(name)
    assert 1 <= len(calls) <= len(runs), (len(calls), sorted(runs))
    events = json.loads(
        kube.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )["items"]
    created_events = [e for e in events if e["reason"] == "SuccessfulCreate" and expected in e["message"]]
    # Posted by the process that created the run only.
    assert len(created_events) == 1 and created_events[0]["count"] == 1, events
    kube.kubectl("delete", f"serviceactionschedules.emrops.io/{name}")

    refused = get_schedule(kube, "refused").get("status") or {}
    assert "actionName" in refused.get("lastCreateError", ""), refused
    assert refused["lastScheduledRun"] == run_name("refused", first)  # given up: not retried at every look
    assert not runs_of(kube.all(), "refused")
    kube.kubectl("delete", "serviceactionschedules.emrops.io/refused")
