"""A new ServiceAction's first status write is the state it goes to (issue 11).

The acceptance (run 1, ``startTime``, ``observedGeneration``, the conditions) is folded into that
write: for a run that may go at once it is the intent, so the path from ADDED to the intent is one
write. A new run that must wait writes that state first (Queued, CredentialsMissing, Scheduled,
Failed), and one whose intent would wait for the rate limiter or a submission slot is accepted
(``Pending``) before it waits, so it never waits without a status.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from controller_fakes import FakeEmr, FakeStore, created_at, services, settle, wait_for_phase

from emrops.api.status import Phase, RunStatus, format_time_precise
from emrops.controller import tenancy
from emrops.controller.machine import Blocked, Context, Drop, Event, Gates, Look, Submit, Wait, accept, decide
from emrops.controller.ratelimit import RateLimiter
from emrops.controller.runner import Supervisor

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


class RecordingStore(FakeStore):
    """Keeps every status write as the object's status right after it (conditions included)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets["creds"] = {"accessKeyId": "ak", "accessKeySecret": "sk"}
        self.written: dict[str, list[dict[str, Any]]] = {}

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        obj = await super().patch_status(namespace, name, status, resource_version)
        self.written.setdefault(name, []).append(dict(obj["status"]))
        return obj

    def phases(self, name: str) -> list[str]:
        return [str(s.get("phase")) for s in self.written.get(name, [])]


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


async def test_a_new_object_s_first_write_is_the_intent_and_a_clean_run_writes_four_times() -> None:
    store = RecordingStore()
    events: list[Event] = []
    supervisor = Supervisor(services(store, FakeEmr(), events))
    supervisor.observe("ADDED", store.add(created_at("sa", "2025-01-01T00:00:00Z")))
    await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    first = store.written["sa"][0]
    assert first["phase"] == "Submitting" and first["run"] == 1 and first["attempts"] == 1
    assert first["startTime"] and first["submittedAt"] and first["observedGeneration"] == 1
    # Reconciling=True from the first write on: never healthy before it has run (kstatus, Argo CD).
    assert _conditions(first) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}
    # The intent, the operationId, one progress count, the end: at most 5 for a clean run.
    assert store.phases("sa") == ["Submitting", "Running", "Running", "Succeeded"]
    assert [e.reason for e in events] == ["Submitting", "Submitted", "Progress", "Succeeded"]


async def test_a_new_object_behind_an_earlier_run_writes_queued_first() -> None:
    store = RecordingStore()
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    store.add(created_at("old", "2025-01-01T00:00:01Z"))
    await wait_for_phase(store, "old", {"Running"})
    store.add(created_at("young", "2025-01-01T00:00:02Z"))
    await wait_for_phase(store, "young", {"Queued"})
    first = store.written["young"][0]
    assert first["phase"] == "Queued" and first["waitingFor"] == ["ns/old"]
    assert first["run"] == 1 and first["startTime"] and first["attempts"] == 0
    emr.finish("op-1")
    await wait_for_phase(store, "young", {"Running"})
    await supervisor.stop()
    assert store.phases("young")[:2] == ["Queued", "Submitting"] and len(emr.submits) == 2


async def test_a_new_object_without_credentials_writes_that_first() -> None:
    store = RecordingStore()
    supervisor = Supervisor(services(store, FakeEmr(), []))
    body = created_at("sa", "2025-01-01T00:00:00Z")
    body["spec"]["credentialsSecretRef"] = {"name": "missing"}
    supervisor.observe("ADDED", store.add(body))
    await settle(lambda: bool(store.written.get("sa")), within=5.0)
    await supervisor.stop()
    first = store.written["sa"][0]
    assert first["phase"] == "Pending" and RunStatus.from_dict(first).reason == "CredentialsMissing"
    assert first["run"] == 1 and first["startTime"]


async def test_a_new_object_whose_token_is_not_there_yet_is_accepted_before_it_waits() -> None:
    """Two new runs on two clusters, one access key, one token: the second does not wait for
    its token without a status, it writes Pending (and its Event) first, then the intent."""
    store = RecordingStore()
    events: list[Event] = []
    svc = dataclasses.replace(services(store, FakeEmr(), events), limiter=RateLimiter(4.0, 1))
    supervisor = Supervisor(svc)
    store.watch(supervisor)
    store.add(created_at("a", "2025-01-01T00:00:01Z", clusterId="c-1"))
    store.add(created_at("b", "2025-01-01T00:00:01Z", clusterId="c-2"))
    await wait_for_phase(store, "a", {"Succeeded"})
    await wait_for_phase(store, "b", {"Succeeded"})
    await supervisor.stop()
    firsts = sorted(store.phases(name)[0] for name in ("a", "b"))
    assert firsts == ["Pending", "Submitting"]
    waited = "a" if store.phases("a")[0] == "Pending" else "b"
    assert store.phases(waited)[:2] == ["Pending", "Submitting"]
    accepted = store.written[waited][0]
    assert accepted["run"] == 1 and accepted["startTime"] and accepted["attempts"] == 0
    assert store.written[waited][1]["startTime"] == accepted["startTime"]
    assert [e.reason for e in events].count("Pending") == 1


async def test_a_new_object_that_would_wait_for_a_submission_slot_is_accepted_first() -> None:
    store = RecordingStore()
    emr = FakeEmr()
    emr.gate = asyncio.Event()  # the first call hangs, holding the only submission slot
    svc = dataclasses.replace(services(store, emr, []), submissions=asyncio.Semaphore(1), intent_budget=5.0)
    supervisor = Supervisor(svc)
    store.watch(supervisor)
    store.add(created_at("a", "2025-01-01T00:00:01Z", clusterId="c-1"))
    await wait_for_phase(store, "a", {"Submitting"})
    store.add(created_at("b", "2025-01-01T00:00:01Z", clusterId="c-2"))
    await wait_for_phase(store, "b", {"Pending"})
    emr.gate.set()
    await wait_for_phase(store, "b", {"Succeeded"})
    await supervisor.stop()
    assert store.phases("a")[0] == "Submitting"
    assert store.phases("b")[:2] == ["Pending", "Submitting"] and len(emr.submits) == 2


async def test_a_new_object_refused_by_the_tenancy_policy_writes_failed_with_run_1() -> None:
    store = RecordingStore()
    svc = dataclasses.replace(services(store, FakeEmr(), []), tenancy_policy=lambda: tenancy.CLOSED)
    supervisor = Supervisor(svc)
    body = created_at("sa", "2025-01-01T00:00:00Z")
    del body["spec"]["credentialsSecretRef"]  # the operator's identity, which the policy lends nobody
    supervisor.observe("ADDED", store.add(body))
    await wait_for_phase(store, "sa", {"Failed"})
    await supervisor.stop()
    assert store.phases("sa") == ["Failed"]
    assert store.written["sa"][0]["run"] == 1 and store.written["sa"][0]["startTime"]


# --- the machine ------------------------------------------------------------------------------


def _ctx(st: RunStatus, **kw: Any) -> Context:
    return Context(status=st, now=NOW, created_at=NOW - timedelta(minutes=5), **kw)


def test_the_intent_records_the_moment_of_acceptance_and_the_deadline_counts_from_it() -> None:
    accepted = NOW - timedelta(seconds=8)  # the worker first looked, then waited for a token
    decision = decide(_ctx(RunStatus(), accepted_at=accepted, deadline_seconds=60), Gates(intent_id="i"))
    assert isinstance(decision, Submit) and decision.status is not None
    assert decision.status.start_time == format_time_precise(accepted)
    # Past the deadline counted from acceptance (not from the intent's own moment): no intent.
    late = decide(_ctx(RunStatus(), accepted_at=accepted, deadline_seconds=5), Gates(intent_id="i"))
    assert late.status is not None and late.status.phase is Phase.FAILED
    assert late.status.reason == "DeadlineExceeded" and late.status.run == 1


def test_a_withdrawn_first_intent_leaves_a_sane_pending_status_with_its_event_once() -> None:
    intent = decide(_ctx(RunStatus()), Gates(intent_id="i")).status
    assert intent is not None and intent.phase is Phase.SUBMITTING
    first = decide(_ctx(intent), Blocked(1, 1, why="the operator is shutting down", intent_id="i"))
    assert isinstance(first, Wait) and first.status is not None
    assert first.status.phase is Phase.PENDING and first.status.run == 1 and first.status.attempts == 0
    assert first.status.start_time == intent.start_time and first.status.submitted_at is None
    assert first.event is not None and first.event.reason == "Pending"
    again = decide(_ctx(intent), Blocked(1, 1, why="the operator is shutting down", intent_id="i", streak=2))
    assert isinstance(again, Wait) and again.event is None


@pytest.mark.parametrize(
    ("gates", "phase", "reason"),
    [
        (Gates(waiting_for=("ns/a",)), Phase.QUEUED, "Queued"),
        (Gates(credentials_problem="Secret ns/creds not found"), Phase.PENDING, "CredentialsMissing"),
    ],
    ids=["behind an earlier run", "without credentials"],
)
def test_a_new_object_that_must_wait_writes_that_with_what_acceptance_records(
    gates: Gates, phase: Phase, reason: str
) -> None:
    decision = decide(_ctx(RunStatus()), gates)
    assert isinstance(decision, Wait) and decision.status is not None and decision.event is not None
    assert (decision.status.phase, decision.status.run, decision.status.attempts) == (phase, 1, 0)
    assert decision.status.start_time == format_time_precise(NOW)
    assert decision.status.reason == reason and decision.event.reason == reason


def test_a_new_scheduled_run_writes_scheduled_once() -> None:
    decision = decide(_ctx(RunStatus(), not_before=NOW + timedelta(hours=1)), Look())
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.phase is Phase.SCHEDULED and decision.status.run == 1
    assert decision.event is not None and decision.event.reason == "WaitingForWindow"


def test_accept_is_only_for_a_new_object() -> None:
    decision = accept(_ctx(RunStatus()))
    assert isinstance(decision, Wait) and decision.status is not None
    assert decision.status.phase is Phase.PENDING and decision.status.run == 1
    assert decision.event is not None and decision.event.reason == "Pending"
    assert isinstance(accept(_ctx(decision.status)), Drop)
