"""Workers with spec.suspend and time windows, against the in-memory store and EMR fakes.

The machine's rules are in test_controller_suspend_window.py; these check the worker performs
them: the plan is read with list calls only, an approval (a spec change) wakes the sleeping worker
at once, and a window that closes between the intent and the call stops the call.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from controller_fakes import FakeEmr, FakeStore, service_action, services, settle, wait_for_phase

from emrops.api.status import format_time
from emrops.controller.machine import Event
from emrops.controller.runner import Supervisor
from emrops.emr.errors import ApiError


async def test_suspended_plan_then_approval_then_one_call(store: FakeStore) -> None:
    emr = FakeEmr()
    events: list[Event] = []
    supervisor = Supervisor(services(store, emr, events))
    store.watch(supervisor)
    body = service_action()
    body["spec"]["suspend"] = True
    supervisor.observe("ADDED", store.add(body))

    await settle(lambda: "plan" in (store.objects["sa"].get("status") or {}), within=5.0)
    status: dict[str, Any] = store.objects["sa"]["status"]
    await asyncio.sleep(0.2)  # a sleeping suspended worker: nothing more happens
    assert emr.submits == [] and emr.node_listings == 1
    assert status["phase"] == "Suspended"
    plan = status["plan"]
    assert plan["instanceCount"] == 2 and plan["batchCount"] == 1 and plan["abnormalCount"] == 1
    assert (
        plan["abnormalInstances"][0]["nodeId"] == "i-2"
        and plan["abnormalInstances"][0]["nodeState"] == "Stopped"
    )
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }

    store.set_spec("sa", "suspend", False)  # the approval: no timer would wake the worker soon
    obj = await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 1
    assert obj["status"]["observedGeneration"] == 2 and obj["status"]["approvedAt"]
    reasons = [e.reason for e in events]
    assert reasons[:3] == ["AwaitingApproval", "Planned", "Approved"] and reasons[-1] == "Succeeded"


async def test_an_approval_cuts_short_the_wait_after_a_failed_plan(store: FakeStore) -> None:
    emr = FakeEmr()
    emr.list_error = ApiError(code="NotAuthorized", message="no emr:ListComponentInstances", http_status=400)
    supervisor = Supervisor(services(store, emr, []))  # plan_retry: 30s, far beyond this test
    store.watch(supervisor)
    body = service_action()
    body["spec"]["suspend"] = True
    supervisor.observe("ADDED", store.add(body))
    await settle(lambda: "plan" in (store.objects["sa"].get("status") or {}), within=5.0)
    status = store.objects["sa"]["status"]
    assert (
        "NotAuthorized" in status["plan"]["error"] and status["conditions"][0]["reason"] == "PlanUnavailable"
    )
    store.set_spec("sa", "suspend", False)
    await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    assert len(emr.submits) == 1


async def test_an_expired_window_ends_the_run_without_any_call(store: FakeStore) -> None:
    emr = FakeEmr()
    supervisor = Supervisor(services(store, emr, []))
    body = service_action()
    body["spec"]["notAfter"] = format_time(datetime.now(UTC) - timedelta(days=1))
    supervisor.observe("ADDED", store.add(body))
    obj = await wait_for_phase(store, "sa", {"Failed"})
    await supervisor.stop()
    assert emr.submits == [] and emr.polls == 0
    assert obj["status"]["conditions"][2]["reason"] == "WindowExpired"


async def test_a_window_closing_after_the_intent_stops_the_call(store: FakeStore) -> None:
    emr = FakeEmr()
    not_after = datetime.now(UTC) + timedelta(minutes=5)
    rechecked = asyncio.Event()
    svc = services(store, emr, [])
    # The clock passes notAfter the moment the worker re-checks the queue after writing its intent.
    svc.clock = lambda: datetime.now(UTC) + (timedelta(minutes=10) if rechecked.is_set() else timedelta(0))
    real_list = store.list_cluster

    async def list_then_late(region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        rechecked.set()
        return await real_list(region_id, cluster_id)

    store.list_cluster = list_then_late  # type: ignore[method-assign]
    supervisor = Supervisor(svc)
    body = service_action()
    body["spec"]["notAfter"] = format_time(not_after)
    supervisor.observe("ADDED", store.add(body))
    obj = await wait_for_phase(store, "sa", {"Failed"})
    await supervisor.stop()
    assert rechecked.is_set() and emr.submits == []
    assert obj["status"]["conditions"][2]["reason"] == "WindowExpired"
