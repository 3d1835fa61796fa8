"""controller.schedules against a small in-memory apiserver: the claim, the create, the confirmation.

The ApiClient and its transport are real (``loopback_apiserver``); the server keeps one schedule
and its ServiceActions and applies resourceVersion preconditions as the apiserver does, so these
tests show the requests each step makes: a firing is claimed before its run is created, a stale
claim makes no run, and a run deleted after its creation was confirmed is never made again.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback_apiserver import Seen, loopback, status_error

from emrops.api.schedule import SCHEDULE_LABEL
from emrops.controller.apiserver import ApiClient
from emrops.controller.schedule_policy import run_name
from emrops.controller.schedules import Schedules, _Redo

NS = "ops"
CREATED = datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC)
FIRING = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
SCHEDULE_PATH = f"/apis/emrops.io/v1alpha1/namespaces/{NS}/serviceactionschedules/hourly"
RUNS_PATH = f"/apis/emrops.io/v1alpha1/namespaces/{NS}/serviceactions"


class World:
    """One schedule and its runs, with resourceVersions as the apiserver keeps them."""

    def __init__(self) -> None:
        self.version = 10
        self.schedule: dict[str, Any] = {
            "metadata": {
                "name": "hourly",
                "namespace": NS,
                "uid": "s-1",
                "generation": 1,
                "resourceVersion": "10",
                "creationTimestamp": "2026-06-01T00:00:30Z",
            },
            "spec": {
                "schedule": "0 * * * *",
                "serviceActionTemplate": {
                    "spec": {"regionId": "r", "clusterId": "c", "actionName": "restart"}
                },
            },
        }
        self.runs: dict[str, dict[str, Any]] = {}
        self.creates: list[str] = []

    def bump(self) -> str:
        self.version += 1
        return str(self.version)

    async def answer(self, seen: Seen) -> tuple[int, Any]:
        path = urlsplit(seen.path).path
        if path == SCHEDULE_PATH and seen.method == "GET":
            return 200, copy.deepcopy(self.schedule)
        if path == f"{SCHEDULE_PATH}/status" and seen.method == "PATCH":
            if seen.body["metadata"]["resourceVersion"] != self.schedule["metadata"]["resourceVersion"]:
                return status_error(409, "the object has been modified")
            status = self.schedule.setdefault("status", {})
            for key, value in seen.body["status"].items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
            self.schedule["metadata"]["resourceVersion"] = self.bump()
            return 200, copy.deepcopy(self.schedule)
        if path == RUNS_PATH and seen.method == "GET":
            selector = parse_qs(urlsplit(seen.path).query)["labelSelector"][0]
            key, value = selector.split("=")
            items = [r for r in self.runs.values() if r["metadata"]["labels"].get(key) == value]
            return 200, {"items": copy.deepcopy(items)}
        if path == RUNS_PATH and seen.method == "POST":
            name = seen.body["metadata"]["name"]
            self.creates.append(name)
            if name in self.runs:
                return status_error(409, f'serviceactions "{name}" already exists')
            run = copy.deepcopy(seen.body)
            run["metadata"].update(uid=f"u-{name}", resourceVersion=self.bump())
            self.runs[name] = run
            return 201, copy.deepcopy(run)
        return status_error(404, f"not found: {seen.method} {path}")


async def step(schedules: Schedules) -> float | None:
    """One look; None when it asked to look again at once."""
    try:
        return await schedules._step(NS, "hourly", "s-1")
    except _Redo:
        return None


async def test_a_due_firing_is_claimed_then_created_then_confirmed() -> None:
    world = World()
    async with loopback(world.answer) as server:
        api = ApiClient(server.info)
        schedules = Schedules(api, clock=lambda: FIRING + timedelta(seconds=5))
        assert await step(schedules) is None  # acted: look again at once
        methods = [(s.method, urlsplit(s.path).path) for s in server.seen]
        assert methods == [
            ("GET", SCHEDULE_PATH),
            ("GET", RUNS_PATH),
            ("PATCH", f"{SCHEDULE_PATH}/status"),  # the claim comes before the create
            ("POST", RUNS_PATH),
        ]
        name = run_name("hourly", FIRING)
        assert world.creates == [name]
        assert world.runs[name]["metadata"]["labels"] == {SCHEDULE_LABEL: "hourly"}
        wait = await step(schedules)
        assert world.schedule["status"]["lastScheduledRun"] == name
        assert wait is not None and 0 < wait <= 3600
        await api.aclose()


async def test_a_process_that_read_the_schedule_before_a_claim_makes_no_second_run() -> None:
    world = World()
    async with loopback(world.answer) as server:
        api = ApiClient(server.info)
        now = FIRING + timedelta(seconds=5)
        first, second = Schedules(api, clock=lambda: now), Schedules(api, clock=lambda: now)
        before_claim = [copy.deepcopy(world.schedule)]
        assert await step(first) is None
        assert await step(first) is not None  # confirmed
        name = run_name("hourly", FIRING)
        del world.runs[name]  # pruned, or deleted by its TTL
        # The second process reads the schedule as it was before the claim (a lagging read): its
        # own claim is refused (409), and what it reads next says the firing is done.
        original = world.answer

        async def stale_once(seen: Seen) -> tuple[int, Any]:
            if seen.method == "GET" and urlsplit(seen.path).path == SCHEDULE_PATH and before_claim:
                return 200, before_claim.pop()
            return await original(seen)

        server.answer = stale_once
        assert await step(second) is None
        assert await step(second) is not None
        assert world.creates == [name] and name not in world.runs
        await api.aclose()


async def test_a_claim_whose_run_was_never_created_is_created_on_the_next_look() -> None:
    world = World()
    world.schedule["status"] = {"lastScheduleTime": "2026-06-01T01:00:00Z"}  # claimed, then the process died
    async with loopback(world.answer) as server:
        api = ApiClient(server.info)
        schedules = Schedules(api, clock=lambda: FIRING + timedelta(minutes=2))
        assert await step(schedules) is None
        assert world.creates == [run_name("hourly", FIRING)]
        assert not any(s.method == "PATCH" for s in server.seen)  # already claimed: no second claim
        await step(schedules)
        assert world.schedule["status"]["lastScheduledRun"] == run_name("hourly", FIRING)
        await api.aclose()
