"""Races an adversarial review found in the first fix of issue 9, one regression test each.

Every test here builds one interleaving with the fakes (the worker, the machine, the queue and the
status writer are the real ones) and asserts a documented promise (docs/concepts.md); each
docstring says which, and how the interleaving broke it before the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from controller_fakes import (
    FakeEmr,
    FakeStore,
    GatedLimiter,
    created_at,
    service_action,
    services,
    settle,
    wait_for_phase,
)

from emrops.api.status import Phase, RunStatus
from emrops.controller.backoff import Backoff
from emrops.controller.machine import Blocked, Context, Gates, Policy, Submit, Wait, decide
from emrops.controller.runner import Supervisor
from emrops.emr.errors import ApiError

RERUN = "emrops.io/run-requested-at"
ACK = "emrops.io/acknowledged-at"


async def test_a_run_whose_deadline_passed_while_it_waited_for_a_token_is_not_submitted(
    store: FakeStore,
) -> None:
    """Deadlines: "spec.activeDeadlineSeconds bounds a run, retries included".

    The worker passes the gates, then waits for a rate-limiter token (a throttled access key) past
    the run's deadline. After the token it decides again with the *old* ``Gates`` and
    ``machine._gates`` never looks at the deadline (nor at ``nextAttemptAt``), so it writes the
    intent and calls RunApplicationAction for a run that is already past its deadline; the action
    runs and the run then ends DeadlineExceeded with a live operation.
    """
    emr = FakeEmr(hold=True)
    svc = services(store, emr, [])
    svc.limiter = GatedLimiter()
    supervisor = Supervisor(svc)
    store.watch(supervisor)
    store.add(created_at("late", "2025-01-01T00:00:01Z", activeDeadlineSeconds=1))
    await asyncio.wait_for(svc.limiter.waiting.wait(), 5)
    await asyncio.sleep(1.3)  # the deadline passes while the worker waits for its token
    svc.limiter.open.set()
    await asyncio.sleep(0.3)
    await supervisor.stop()
    assert emr.submits == [], "RunApplicationAction was called after the run's deadline"
    assert store.objects["late"]["status"]["phase"] == "Failed"


async def test_a_rerun_of_a_run_whose_operation_is_still_followed_waits_for_that_operation(
    store: FakeStore,
) -> None:
    """Queueing: a run past its deadline "holds the cluster's queue until [its operation] ends";
    "two overlapping runs on a cluster are never in flight at once".

    Run 1 exceeds its deadline while its EMR operation still runs, so emrops follows it and holds
    the cluster. A re-run annotation then arrives (the GitOps "rerun" action, say). ``_look``
    handles the re-run before ``following``: run 1 goes to history, run 2 starts at once and the
    followed operation is forgotten. Run 2 sorts by its (new) acceptance time and is not
    exclusive, so the overlapping ``next``, queued behind the followed operation, is let go and
    calls RunApplicationAction while run 1's operation is still running (and run 2 after it).
    """
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    store.add(created_at("slow", "2025-01-01T00:00:01Z", activeDeadlineSeconds=1))
    await wait_for_phase(store, "slow", {"Running"})
    first_op = store.objects["slow"]["status"]["operationId"]
    store.add(created_at("next", "2025-01-01T00:00:02Z"))
    await wait_for_phase(store, "next", {"Queued"})
    await wait_for_phase(store, "slow", {"Failed"})  # DeadlineExceeded, operation still IN_PROGRESS
    assert store.objects["slow"]["status"]["conditions"][2]["reason"] == "DeadlineExceeded"
    store.annotate("slow", RERUN, "again")
    await asyncio.sleep(0.5)
    await supervisor.stop()
    assert first_op in emr.running()
    assert emr.most_running == 1, f"{emr.most_running} overlapping operations in flight at once"


async def test_an_acknowledgement_older_than_the_run_does_not_release_it(store: FakeStore) -> None:
    """Unknown runs hold the cluster until acknowledged; machine.py: "an old acknowledgement never
    releases a new run".

    The acknowledged-at annotation was set while run 1 was a plain Failed run (it held nothing,
    so the value was never "handled" into status.acknowledgedAt). A re-run is asked for; run 2's
    call ends ambiguous (InternalError) -> Unknown. The old annotation value differs from
    status.acknowledgedAt (None), so ``_ack_is_new`` takes it as a fresh acknowledgement and run 2
    is released at once, without anyone having looked at it: the overlapping ``next`` starts while
    run 2's operation may be running.
    """
    emr = FakeEmr(ApiError(code="InternalError", message="boom", http_status=500), hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    old = created_at("old", "2025-01-01T00:00:01Z")
    old["metadata"]["annotations"] = {ACK: "acknowledged long ago"}
    old["status"] = {"phase": "Failed", "run": 1, "attempts": 1}
    store.add(old)
    await asyncio.sleep(0.1)
    store.annotate("old", RERUN, "run 2")
    await wait_for_phase(store, "old", {"Unknown"})
    emr.submit_error = None
    store.add(created_at("next", "2025-01-01T00:00:02Z"))
    await asyncio.sleep(0.5)
    status = store.objects["old"]["status"]
    await supervisor.stop()
    assert status.get("acknowledgedRun") is None, "run 2 was released by an acknowledgement set before it"
    assert store.objects["next"]["status"]["phase"] == "Queued"


class SlowListStore:
    """The same objects as ``inner``, but ``list_cluster`` answers only once ``release`` is set
    (an overloaded apiserver, a long GC pause, a process stopped between two awaits)."""

    def __init__(self, inner: FakeStore) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.listing = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        self.listing.set()
        await self.release.wait()
        return await self.inner.list_cluster(region_id, cluster_id)


async def test_an_intent_older_than_the_in_flight_grace_is_never_called(store: FakeStore) -> None:
    """Exactly once: "a run calls RunApplicationAction at most once ... whatever is delayed, with
    one operator process or several"; Unknown: emrops "does not call again on its own".

    Replica F writes the intent and is then delayed before its call (the consistent re-check
    list is slow: nothing bounds the intent write plus the list plus a paused process by the
    grace's 20 s margin over the call timeout). Replica S finds ``Submitting`` older than the
    in-flight grace and, rightly, declares ``Unknown``. A person checks the EMR console (nothing
    ran), asks for a re-run as the guidance says, and S calls for run 2. Then F's list returns:
    F never checks that its intent is still the status (its own object, in that very listing, has
    moved on), nor how old the intent is, and calls RunApplicationAction for run 1. The action
    runs twice, two overlapping operations are in flight at once, and F's is recorded nowhere
    (``_accepted`` drops it: the status is at run 2).
    """
    emr = FakeEmr(hold=True)
    slow = SlowListStore(store)
    f = Supervisor(services(slow, emr, []))  # type: ignore[arg-type]
    s = Supervisor(services(store, emr, []))
    body = store.add(service_action())
    f.observe("ADDED", copy.deepcopy(body))
    await asyncio.wait_for(slow.listing.wait(), 5)  # F's intent is written; F re-checks the queue
    assert store.objects["sa"]["status"]["phase"] == "Submitting"
    store.watch(s)
    s.observe("MODIFIED", copy.deepcopy(store.objects["sa"]))
    await wait_for_phase(store, "sa", {"Unknown"})  # S, after the in-flight grace
    store.annotate("sa", RERUN, "nothing ran in the console; run it")
    await wait_for_phase(store, "sa", {"Running"})  # S calls for run 2
    assert len(emr.submits) == 1
    slow.release.set()
    await asyncio.sleep(0.3)
    await asyncio.gather(f.stop(), s.stop())
    assert len(emr.submits) == 1, (
        "an intent older than the grace was called after the run was declared Unknown"
    )
    assert emr.most_running == 1


async def test_an_object_deleted_after_its_intent_is_never_called_for(store: FakeStore) -> None:
    """A vanished object's worker stops; deleting a ServiceAction is how a person takes back an
    action that has not started.

    The intent is written, then the object is deleted while the worker re-checks the queue (the
    DELETED event not processed yet: the watch lags behind the consistent list). The consistent
    listing the worker gets back no longer contains its own object, but ``_recheck`` only looks
    for *other* runs there, so RunApplicationAction is called for an object that no longer
    exists. Its answer cannot be recorded (404), the queue has already let the object go, and the
    operation runs tracked by nobody.
    """
    emr = FakeEmr(hold=True)
    slow = SlowListStore(store)
    supervisor = Supervisor(services(slow, emr, []))  # type: ignore[arg-type]
    supervisor.observe("ADDED", store.add(service_action()))
    await asyncio.wait_for(slow.listing.wait(), 5)  # the intent is written; the re-check lists
    store.delete("sa", tell_watchers=False)
    slow.release.set()
    await asyncio.sleep(0.3)
    await supervisor.stop()
    assert emr.submits == [], (
        "RunApplicationAction was called for an object the re-check's listing shows deleted"
    )


@pytest.mark.parametrize("waiting", ["for its credentials", "behind an Unknown run"])
async def test_a_worker_whose_object_vanished_while_waiting_stops(store: FakeStore, waiting: str) -> None:
    """Several processes: "a vanished object's worker stops"; "a deleted object stops its worker
    at the next read or write that finds it gone, even when the watch never reported the
    deletion".

    The existence re-check (``exists_recheck``) runs only before a GetOperation poll. A worker
    that waits without writing (Pending/CredentialsMissing re-reading its Secret, or Queued
    behind a run that holds the cluster until a person acts) never reads or writes its object:
    deleted without a DELETED event reaching us (a re-list after 410, a label removed under
    --label-selector), it loops forever. Behind an Unknown run, the queue re-check's consistent
    listing even shows the object gone (``_reconcile`` drops it from the book) and the worker
    still does not stop.
    """
    emr = FakeEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    if waiting == "for its credentials":
        body = created_at("orphan", "2025-01-01T00:00:02Z")
        body["spec"]["credentialsSecretRef"] = {"name": "missing"}
        store.add(body)
        await wait_for_phase(store, "orphan", {"Pending"})
        await asyncio.sleep(0.1)
    else:
        unknown = created_at("unknown", "2025-01-01T00:00:01Z")
        unknown["status"] = {"phase": "Unknown", "run": 1, "attempts": 1}
        store.add(unknown)
        store.add(created_at("orphan", "2025-01-01T00:00:02Z"))
        await wait_for_phase(store, "orphan", {"Queued"})
    assert supervisor.active == 1
    store.delete("orphan", tell_watchers=False)
    await asyncio.sleep(1.0)  # 20 x exists_recheck, 20 x the queue and credentials re-checks
    active = supervisor.active
    await supervisor.stop()
    assert active == 0, f"the worker of a vanished object still runs (waiting {waiting})"


class SlowStopEmr(FakeEmr):
    """``stop`` calls answer only once ``stop_gate`` is set: which call returns first is chosen."""

    def __init__(self) -> None:
        super().__init__(hold=True)
        self.stop_gate = asyncio.Event()

    async def run_application_action(self, request: Any, *, credentials: Any) -> Any:
        if request.action_name == "stop":
            await self.stop_gate.wait()
        return await super().run_application_action(request, credentials=credentials)


async def test_the_worker_of_a_deleted_object_never_adopts_its_same_name_successor(store: FakeStore) -> None:
    """Several processes: "a vanished object's worker stops"; exactly once: ``operationId``
    records the run's own call.

    GitOps replaces a ServiceAction (delete, create again under the same name, here with another
    action) while the old object's RunApplicationAction is in flight, and the watch misses the
    DELETED event (a re-list after 410). Reads and writes go by name only: the old worker's
    record write conflicts, ``_refresh`` reads the *new* object by name (no uid check; its
    resourceVersion is higher, so ``update`` takes it), and ``_accepted`` finds the new object's
    own intent (run 1, attempt 1, no operationId) and writes the OLD action's operation into it.
    The new object's own operation is then dropped ("already recorded") and followed by nobody:
    the new object reports an operation of another action, the queue lets the next overlapping
    run go when that one ends while the untracked one may still run, and the old worker lives on,
    driving the successor next to the successor's own worker.
    """
    emr = SlowStopEmr()
    emr.gate = asyncio.Event()
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    store.add(service_action("sa"))  # actionName restart
    await wait_for_phase(store, "sa", {"Submitting"})
    store.delete("sa", tell_watchers=False)
    successor = service_action("sa")
    successor["metadata"]["uid"] = "uid-sa-2"
    successor["spec"]["actionName"] = "stop"
    store.add(successor)
    await wait_for_phase(store, "sa", {"Submitting"})  # the successor's own intent
    emr.gate.set()  # the old object's restart call returns first, and its worker ends ...
    with contextlib.suppress(TimeoutError):  # with the bug it never ends: the assertions say so
        await settle(lambda: "uid-sa" not in supervisor._workers)
    emr.stop_gate.set()  # ... then the successor's stop call
    with contextlib.suppress(TimeoutError):
        await settle(lambda: len(emr.submits) == 2 and "operationId" in store.objects["sa"].get("status", {}))
    workers = sorted(supervisor._workers)
    await supervisor.stop()
    assert len(emr.submits) == 2
    recorded = store.objects["sa"]["status"]["operationId"]
    request = emr.submits[int(recorded.removeprefix("op-")) - 1]
    assert request.action_name == "stop", (
        f"the successor records {recorded}, the deleted object's {request.action_name} call"
    )
    assert workers == ["uid-sa-2"], f"workers {workers}: the deleted object's worker still runs"


def test_a_queue_recheck_that_keeps_failing_backs_off() -> None:
    """No worker spins: a retry after a failure backs off exponentially, up to the cap.

    When the consistent re-check after the intent fails (the list times out on a big namespace,
    a 403, a 5xx), the intent is withdrawn with ``attempts`` put back, and the retry delay is
    ``backoff.delay(1, jitter)`` every time: nothing counts consecutive withdrawals, so a
    re-check that keeps failing makes the worker write an intent and withdraw it again every
    ``base`` seconds at most (uniform in [0, 1 s] by default) forever, taking a
    RunApplicationAction rate-limiter token each round. Ten failures in a row, with the largest
    jitter draw, still wait only ``base``.
    """
    policy = Policy(backoff=Backoff(base=1.0, cap=60.0))
    status = RunStatus(phase=Phase.PENDING, run=1, attempts=0, start_time="2025-06-01T12:00:00.000000Z")
    now = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
    waited: list[float] = []
    for streak in range(1, 11):
        ctx = Context(status=status, now=now, created_at=now, jitter=0.999, policy=policy)
        submit = decide(ctx, Gates())
        assert isinstance(submit, Submit) and submit.status is not None
        intent = submit.status
        ctx = Context(status=intent, now=now, created_at=now, jitter=0.999, policy=policy)
        withdrawn = decide(
            ctx,
            Blocked(intent.run or 1, intent.attempts or 1, why="the queue re-check failed", streak=streak),
        )
        assert isinstance(withdrawn, Wait) and withdrawn.status is not None
        waited.append(withdrawn.after)
        status = withdrawn.status
        now += timedelta(seconds=withdrawn.after)
    assert waited[-1] > 2 * waited[0], f"waits after each failed re-check: {[round(w, 2) for w in waited]}"


async def test_a_submitting_status_with_an_operation_id_is_polled_at_the_polling_interval(
    store: FakeStore,
) -> None:
    """No worker spins.

    ``_look`` explicitly routes ``Submitting`` with an ``operationId`` to ``Poll`` (as Running),
    but ``_polled`` and ``_poll_failed`` drop every answer unless the phase is Running: the
    worker records nothing, waits nothing, and polls again at once, as fast as the limiter lets
    it (with an EMR answer that does not yield, the event loop never runs anything else). No
    current transition writes that status, but one restored from a backup, written by hand or by
    another version is read as valid by ``_look``.
    """

    class YieldingEmr(FakeEmr):
        async def get_operation(self, request: Any, *, credentials: Any) -> Any:
            await asyncio.sleep(0)
            return await super().get_operation(request, credentials=credentials)

    emr = YieldingEmr(hold=True)
    supervisor = Supervisor(services(store, emr, []))
    body = service_action()
    body["status"] = {"phase": "Submitting", "operationId": "op-x", "run": 1, "attempts": 1}
    supervisor.observe(None, store.add(body))
    await asyncio.sleep(0.3)
    await supervisor.stop()
    assert emr.polls < 50, f"{emr.polls} GetOperation calls in 0.3 s (the polling interval is 0.01-0.02 s)"


class LostIntentAnswerStore(FakeStore):
    """The first intent write (phase Submitting) is applied, but its answer never comes back
    (a client timeout or a dropped connection after the apiserver committed it)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        written = await super().patch_status(namespace, name, status, resource_version)
        if status.get("phase") == "Submitting" and not self.lost:
            self.lost = True
            raise TimeoutError("the apiserver's answer was lost")
        return written


async def test_an_intent_whose_write_answer_was_lost_is_not_left_to_become_unknown() -> None:
    """Unknown is for "the call's outcome is unknown: emrops does not know whether EMR started the
    action"; an Unknown run holds the cluster until a person acknowledges it.

    The intent write is committed but its answer is lost (a timeout after the apiserver applied
    it). ``_apply`` lets the error escape ``_submit``; the worker backs off, re-reads, finds
    ``Submitting`` without an operationId and treats it as another process's call in flight: after
    the in-flight grace the run is ``Unknown``, although this very worker knows it never called
    EMR. A person must now check the console and acknowledge or re-run, and every overlapping run
    on the cluster waits until then.
    """
    store = LostIntentAnswerStore()
    store.secrets["creds"] = {"accessKeyId": "ak", "accessKeySecret": "sk"}
    emr = FakeEmr()
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    store.add(service_action())
    done = await wait_for_phase(store, "sa", {"Succeeded", "Unknown", "Failed"})
    phase = done["status"]["phase"]
    await supervisor.stop()
    assert store.lost
    assert phase == "Succeeded", f"{phase} after {len(emr.submits)} RunApplicationAction calls"
