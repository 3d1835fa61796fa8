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


def test_same_second_order_does_not_depend_on_how_fresh_the_view_is() -> None:
    """Hole 2: each worker saw its own fresh startTime and the other's not yet; both went."""
    z_fresh, a_stale = entries(body("z", T1, "Pending", start="2025-01-01T00:00:01.100000Z"), body("a", T1))
    z_stale, a_fresh = entries(body("z", T1), body("a", T1, "Pending", start="2025-01-01T00:00:01.200000Z"))
    # z's worker (its own entry fresh, a's stale) and a's worker (the other way round) agree:
    # in the same second the name decides, so z waits for a and a waits for nobody.
    assert blockers(z_fresh, [z_fresh, a_stale]) == ("ns/a",)
    assert blockers(a_fresh, [z_stale, a_fresh]) == ()


def test_first_runs_order_by_creation_then_namespace_then_name_only() -> None:
    young_a, old_z = entries(body("a", T2), body("z", T1, "Queued", start="2025-01-01T00:00:09.000000Z"))
    assert blockers(young_a, [young_a, old_z]) == ("ns/z",)
    assert blockers(old_z, [young_a, old_z]) == ()


def test_a_rerun_sorts_after_first_runs_created_in_the_same_second() -> None:
    rerun, fresh = entries(
        body("a", T1, "Pending", start="2025-01-01T00:00:01.000001Z", run=2), body("z", T1)
    )
    assert blockers(rerun, [rerun, fresh]) == ("ns/z",)
    assert blockers(fresh, [rerun, fresh]) == ()


def test_runs_without_credentials_and_released_runs_do_not_block() -> None:
    creds = body("a", T1, "Pending")
    creds["status"]["conditions"] = [
        {"type": "Reconciling", "status": "True", "reason": "CredentialsMissing", "lastTransitionTime": T1}
    ]
    unknown = body("b", T1, "Unknown")
    released = body("c", T1, "Unknown")
    released["status"].update(acknowledgedAt="checked", acknowledgedRun=1)
    later = body("d", T2)
    a, b, c, d = entries(creds, unknown, released, later)
    assert blockers(d, [a, b, c, d]) == ("ns/b",)


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


def test_the_book_recomputes_an_entry_only_for_a_newer_resource_version() -> None:
    book = Book()
    first = body("a", T1, "Pending")
    first["metadata"]["resourceVersion"] = "5"
    book.observe(first)
    same_version = copy.deepcopy(first)
    same_version["status"]["phase"] = "Running"  # cannot happen for one version: shows the cache
    book.observe(same_version)
    assert [e.exclusive for e in book(("cn-hangzhou", "c-1"))] == [False]
    same_version["metadata"]["resourceVersion"] = "6"
    book.observe(same_version)
    assert [e.exclusive for e in book(("cn-hangzhou", "c-1"))] == [True]
    older = copy.deepcopy(first)
    older["metadata"]["resourceVersion"] = "4"  # a listing served before the watch's last event
    book.observe(older)
    assert [e.exclusive for e in book(("cn-hangzhou", "c-1"))] == [True]
    unreadable = copy.deepcopy(same_version)
    unreadable["metadata"]["resourceVersion"] = "7"
    del unreadable["spec"]["clusterId"]
    book.observe(unreadable)
    assert len(book) == 0 and book(("cn-hangzhou", "c-1")) == ()
