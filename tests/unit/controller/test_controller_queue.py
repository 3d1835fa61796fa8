"""The per-cluster queue (who waits for whom) and progress from instance snapshots."""

from __future__ import annotations

import copy
from typing import Any

from emrops.api.targets import Target
from emrops.controller.progress import InstanceState, ProgressTracker
from emrops.controller.queue import Book, blockers, entry_of
from emrops.emr.models import ActionName


def body(name: str, created: str, phase: str | None = None, selector: dict[str, Any] | None = None,
         start: str | None = None, run: int = 1, cluster: str = "c-1") -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {
            "regionId": "cn-hangzhou",
            "clusterId": cluster,
            "actionName": "restart",
            "componentInstanceSelector": selector
            or {"runActionScope": "APPLICATION", "applicationName": "HDFS"},
        },
        "status": {
            k: v for k, v in {"phase": phase, "startTime": start, "run": run}.items() if v is not None
        },
    }


def entries(*bodies: dict[str, Any]):  # type: ignore[no-untyped-def]
    found = [entry_of(b) for b in bodies]
    return [f[1] for f in found if f is not None]


T1, T2, T3 = "2025-01-01T00:00:01Z", "2025-01-01T00:00:02Z", "2025-01-01T00:00:03Z"


def test_runs_wait_for_earlier_overlapping_unfinished_runs_in_order() -> None:
    a, b, c = entries(body("a", T1, "Pending"), body("b", T2, "Pending"), body("c", T3))
    assert blockers(a, [a, b, c]) == ()
    assert blockers(b, [a, b, c]) == ("ns/a",)
    assert blockers(c, [c, b, a]) == ("ns/a", "ns/b")


def test_finished_and_disjoint_runs_do_not_block() -> None:
    yarn = {"runActionScope": "APPLICATION", "applicationName": "YARN"}
    a, b, c = entries(body("a", T1, "Succeeded"), body("b", T2, "Running", yarn), body("c", T3, "Pending"))
    assert blockers(c, [a, b, c]) == ()


def test_in_flight_runs_block_even_when_younger() -> None:
    old, young = entries(body("old", T1, "Pending"), body("young", T2, "Running"))
    assert blockers(old, [old, young]) == ("ns/young",)


def test_same_second_orders_by_acceptance_time() -> None:
    first, second = entries(
        body("z", T1, "Queued", start="2025-01-01T00:00:01.100000Z"),
        body("a", T1, "Queued", start="2025-01-01T00:00:01.200000Z"),
    )
    assert blockers(second, [first, second]) == ("ns/z",)
    assert blockers(first, [first, second]) == ()
    (not_accepted,) = entries(body("b", T1))
    assert blockers(not_accepted, [first, second, not_accepted]) == ("ns/z", "ns/a")


def test_a_rerun_queues_by_when_it_was_accepted() -> None:
    rerun, fresh = entries(
        body("old", T1, "Pending", start="2025-01-01T00:00:09.000000Z", run=2), body("new", T3, "Pending")
    )
    assert blockers(rerun, [rerun, fresh]) == ("ns/new",)


def test_unreadable_spec_has_no_entry() -> None:
    assert entry_of({"metadata": {"name": "x"}, "spec": {"regionId": "r"}}) is None


def inst(node: str, state: str) -> InstanceState:
    return InstanceState("HDFS", "DataNode", node, state)


def test_restart_progress_counts_instances_that_came_back() -> None:
    tracker = ProgressTracker(ActionName.RESTART, frozenset({Target("HDFS", "DataNode")}))
    p = tracker.observe(
        [inst("n1", "STARTED"), inst("n2", "STARTED"), InstanceState("HDFS", "NameNode", "m", "x")]
    )
    assert p is not None and (p.total, p.done) == (2, 0)
    p = tracker.observe([inst("n1", "STOPPING"), inst("n2", "STARTED")])
    assert p is not None and p.done == 0
    p = tracker.observe([inst("n1", "STARTED"), inst("n2", "START_FAILED")])
    assert p is not None and (p.done, p.failed) == (1, 1)
    assert p.message == "1 of 2 instances restarted, 1 failed"


def test_stop_progress_and_untrackable_actions() -> None:
    tracker = ProgressTracker(ActionName.STOP, frozenset({Target("HDFS")}))
    p = tracker.observe([inst("n1", "STOPPED"), inst("n2", "STOPPING")])
    assert p is not None and (p.total, p.done) == (2, 1)
    assert (
        ProgressTracker(ActionName.CONFIG, frozenset({Target("HDFS")})).observe([inst("n1", "STARTED")])
        is None
    )


def test_the_book_recomputes_an_entry_only_for_a_new_resource_version() -> None:
    book = Book()
    first = body("a", T1, "Pending")
    first["metadata"]["resourceVersion"] = "5"
    book.observe(first)
    same_version = copy.deepcopy(first)
    same_version["status"]["phase"] = "Queued"  # cannot happen for one version: shows the cache
    book.observe(same_version)
    assert [e.phase for e in book(("cn-hangzhou", "c-1"))] == ["Pending"]
    same_version["metadata"]["resourceVersion"] = "6"
    book.observe(same_version)
    assert [e.phase for e in book(("cn-hangzhou", "c-1"))] == ["Queued"]
    unreadable = copy.deepcopy(same_version)
    unreadable["metadata"]["resourceVersion"] = "7"
    del unreadable["spec"]["clusterId"]
    book.observe(unreadable)
    assert len(book) == 0 and book(("cn-hangzhou", "c-1")) == ()
