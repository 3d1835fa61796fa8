"""What a worker holds while thousands of runs are in flight (issue 11, docs/performance.md).

A worker keeps one copy of its object: the watch event of its own write (same resourceVersion)
does not replace the body it holds, and the intent write's answer is not kept once the submission
is over. A run waiting for a submission slot holds no decided intent: the intent is decided once
the slot is taken, from the object as it is then. The bodies kept share their short strings.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import dataclasses
import gc
import json
import sys
import types
import weakref
from typing import Any

from controller_fakes import FakeEmr, FakeStore, created_at, services, settle, wait_for_phase

from emrops.controller import kube
from emrops.controller.kube import SHARE_MAX, Conflict, trimmed
from emrops.controller.runner import Supervisor, Worker


class CountingStore(FakeStore):
    """Counts the status writes refused for a stale resourceVersion."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets["creds"] = {"accessKeyId": "ak", "accessKeySecret": "sk"}
        self.conflicts = 0
        self.phases: list[str] = []

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        try:
            obj = await super().patch_status(namespace, name, status, resource_version)
        except Conflict:
            self.conflicts += 1
            raise
        self.phases.append(str(obj["status"].get("phase")))
        return obj


async def test_the_same_resource_version_again_keeps_the_body_held() -> None:
    store = CountingStore()
    held = store.add(created_at("sa", "2025-01-01T00:00:00Z"))
    worker = Worker(services(store, FakeEmr(), []), held)
    worker.update(copy.deepcopy(held))  # the watch event of a write whose answer we hold
    assert worker.body is held
    newer = copy.deepcopy(held)
    newer["metadata"]["resourceVersion"] = str(int(held["metadata"]["resourceVersion"]) + 1)
    worker.update(newer)
    assert worker.body is newer


async def test_a_running_worker_keeps_no_second_copy_of_its_object() -> None:
    store = CountingStore()
    emr = FakeEmr(hold=True)  # the operation stays in progress: the worker keeps polling
    supervisor = Supervisor(services(store, emr, []))
    store.watch(supervisor)
    store.add(created_at("sa", "2025-01-01T00:00:00Z"))
    await wait_for_phase(store, "sa", {"Running"})
    await settle(lambda: store.objects["sa"]["metadata"]["resourceVersion"] == _held(supervisor)["rv"])
    found = _held(supervisor)
    await supervisor.stop()
    assert found["rv"] == store.objects["sa"]["metadata"]["resourceVersion"]
    assert found["written"] is None  # the intent write's answer went with its submission


async def test_an_intent_is_decided_once_the_submission_slot_is_taken() -> None:
    store = CountingStore()
    slots = asyncio.Semaphore(1)
    svc = dataclasses.replace(services(store, FakeEmr(), []), submissions=slots, intent_budget=5.0)
    supervisor = Supervisor(svc)
    store.watch(supervisor)
    await slots.acquire()  # every slot taken: the new run is accepted, then waits for one
    store.add(created_at("sa", "2025-01-01T00:00:00Z"))
    await wait_for_phase(store, "sa", {"Pending"})
    for _ in range(20):  # let the worker come back through the gates and park on the slot
        await asyncio.sleep(0.01)
    # The object changes while the run waits (a label, an annotation: a new resourceVersion).
    store.annotate("sa", "example.com/owner", "team-a")
    rv = store.objects["sa"]["metadata"]["resourceVersion"]
    await settle(lambda: _held(supervisor)["rv"] == rv)
    slots.release()
    await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    # Decided after the wait, from the annotated object: the intent write is not refused.
    assert store.conflicts == 0
    assert store.phases[:2] == ["Pending", "Submitting"]


def _held(supervisor: Supervisor) -> dict[str, Any]:
    workers = [worker for worker, _task in supervisor._workers.values()]
    if not workers:
        return {"rv": None, "written": None}
    worker = workers[0]
    return {"rv": worker.body["metadata"]["resourceVersion"], "written": worker._written}


def test_kept_bodies_share_their_short_strings_and_drop_managed_fields() -> None:
    raw = json.dumps(
        {
            "apiVersion": "emrops.io/v1alpha1",
            "kind": "ServiceAction",
            "metadata": {"name": "sa", "managedFields": [{"manager": "kubectl"}], "resourceVersion": "7"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
            "spec": {"description": "x" * (SHARE_MAX + 1)},
        }
    )
    first, second = json.loads(raw), json.loads(raw)
    assert first["status"]["phase"] is not second["status"]["phase"]  # JSON decoding shares nothing
    a, b = trimmed(first), trimmed(second)
    assert a == {**first, "metadata": {"name": "sa", "resourceVersion": "7"}}
    assert "managedFields" in first["metadata"]  # the original is left alone
    assert a["status"]["phase"] is b["status"]["phase"]
    condition_a, condition_b = a["status"]["conditions"][0], b["status"]["conditions"][0]
    assert next(iter(condition_a)) is next(iter(condition_b))  # the keys too
    assert condition_a["status"] is condition_b["status"]
    assert a["spec"]["description"] is not b["spec"]["description"]  # long strings stay apart
    assert a["status"] is not first["status"]  # a copy: later changes to the event's body stay there


def test_the_strings_shared_between_kept_bodies_are_a_bounded_table() -> None:
    """Not the interpreter's interned strings: that table grows with every distinct string
    interned (each run's uid, resourceVersion and timestamps: 1.9 MB at 1,000 runs in flight) and
    keeps its size after they are gone; ours starts over when full."""
    uid = "".join(["0b7c", "-unique-uid"])
    (kept,) = [trimmed({"metadata": {"uid": uid}})]
    assert sys.intern("".join(["0b7c", "-unique-uid"])) is not kept["metadata"]["uid"]
    for n in range(3 * kube.SHARED_LIMIT):
        trimmed({"metadata": {"name": f"sa-{n}", "uid": f"uid-{n}"}, "status": {"phase": "Running"}})
        assert len(kube._shared) <= kube.SHARED_LIMIT
    a = trimmed({"status": {"phase": "Running"}})
    b = trimmed({"status": {"phase": "Running"}})
    assert a["status"]["phase"] is b["status"]["phase"]  # what repeats is shared again at once


async def test_a_worker_waiting_for_its_next_poll_holds_no_decision_in_its_frames() -> None:
    """The wait between polls is slept by ``Worker.run`` itself, after the step's frames are gone:
    a sleep inside the step kept the body it decided from, the intent, the call's request and the
    rendered statuses alive (about 8 KB per run, measured with tracemalloc) for every run in flight."""
    store = CountingStore()
    emr = FakeEmr(hold=True)
    svc = services(store, emr, [])
    slow = dataclasses.replace(svc.policy, poll_initial=30.0, poll_max=60.0)
    supervisor = Supervisor(dataclasses.replace(svc, policy=slow, exists_recheck=600.0))
    store.watch(supervisor)
    store.add(created_at("sa", "2025-01-01T00:00:00Z"))
    await wait_for_phase(store, "sa", {"Running"})
    ((_worker, task),) = supervisor._workers.values()
    await settle(lambda: [f.f_code.co_name for f in _awaiting(task)] == ["run", "_sleep"])
    frames = _awaiting(task)
    kept = [type(v).__name__ for f in frames for v in f.f_locals.values()]
    await supervisor.stop()
    assert [f.f_code.co_name for f in frames] == ["run", "_sleep"]
    assert not {"RunStatus", "Submit", "Wait", "Accepted", "dict"} & set(kept), kept


#: Stands for kopf's handler context variables (the cause with the raw watch event, the patch...).
_HANDLER_CAUSE: contextvars.ContextVar[object] = contextvars.ContextVar("handler_cause")


class _Cause:
    """What kopf's context holds while a handler runs (weakly referenceable, to see it go)."""


async def test_a_worker_keeps_nothing_of_the_handler_context_that_started_it() -> None:
    """kopf calls a handler with context variables holding the cause (with the raw watch event:
    the whole object as decoded, managedFields included), the patch, loggers and body views, and
    asyncio copies the caller's context into every task and done callback. A worker started from
    the handler kept all of it for its whole run: 9 decoded dicts and kopf's wrappers per run in
    flight, the largest live site of a 1,000-object burst (docs/performance.md)."""
    store = CountingStore()
    supervisor = Supervisor(services(store, FakeEmr(hold=True), []))
    causes: list[weakref.ref[_Cause]] = []

    def observe_in_handler(event_type: str, body: dict[str, Any]) -> None:
        cause = _Cause()
        causes.append(weakref.ref(cause))
        context = contextvars.copy_context()
        context.run(_HANDLER_CAUSE.set, cause)
        context.run(supervisor.observe, event_type, body)

    store.watchers.append(observe_in_handler)
    store.add(created_at("sa", "2025-01-01T00:00:00Z"))
    await wait_for_phase(store, "sa", {"Running"})
    gc.collect()
    alive = [ref for ref in causes if ref() is not None]
    running = len(supervisor._workers)
    await supervisor.stop()
    assert running == 1  # the worker is still there, polling
    assert causes
    assert not alive


def _awaiting(task: asyncio.Task[None]) -> list[types.FrameType]:
    """The frames of the coroutines ``task`` is suspended in, outermost first."""
    frames: list[types.FrameType] = []
    coro: object = task.get_coro()
    while isinstance(coro, types.CoroutineType) and coro.cr_frame is not None:
        frames.append(coro.cr_frame)
        coro = coro.cr_await
    return frames
