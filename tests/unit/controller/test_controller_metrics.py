"""What an SRE watches on /metrics: the process (RSS, CPU, fds), the build, the Events' fate,
the runs that are stalled and how long a run waits for its RunApplicationAction to be accepted."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from controller_fakes import FakeEmr, FakeStore, service_action, services, wait_for_phase
from prometheus_client import generate_latest

from emrops import __version__
from emrops.controller.metrics import Metrics
from emrops.controller.runner import Supervisor
from emrops.emr.errors import OutcomeUnknownError


def test_process_figures_and_build_info_are_exposed() -> None:
    metrics = Metrics()
    metrics.events.labels(outcome="aggregated").inc()
    text = generate_latest(metrics.registry).decode()
    samples = {line.split(" ")[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if line[:1] != "#"}
    rss = float(samples["process_resident_memory_bytes"])
    assert 1 << 20 < rss < 1 << 34
    assert float(samples["process_open_fds"]) >= 3
    assert "process_cpu_seconds_total" in samples
    build = next(name for name in samples if name.startswith("emrops_build_info{"))
    assert f'version="{__version__}"' in build
    assert samples[build] == "1.0"
    assert samples['emrops_events_total{outcome="aggregated"}'] == "1.0"


def _sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return metrics.registry.get_sample_value(name, labels or {})


def test_the_stalled_gauge_counts_each_object_once_and_forgets_the_deleted() -> None:
    metrics = Metrics()
    assert _sample(metrics, "emrops_serviceactions_stalled") == 0.0  # a series before anything stalls
    metrics.saw("a", "Running", stalled=True)  # HUMAN_PROCESSING: stalled while Running
    metrics.saw("a", "Running", stalled=True)  # the same object again: still one
    metrics.saw("b", "Running", stalled=True)
    assert _sample(metrics, "emrops_serviceactions_stalled") == 2.0
    metrics.saw("b", "Running")  # it moved on: same phase, no longer stalled
    assert _sample(metrics, "emrops_serviceactions_stalled") == 1.0
    metrics.saw("a", None, stalled=True)  # deleted
    assert _sample(metrics, "emrops_serviceactions_stalled") == 0.0


@pytest.mark.parametrize("phase", ["Failed", "Unknown", "Succeeded"])
def test_a_settled_run_is_not_counted_stalled(phase: str) -> None:
    """Failed and Unknown runs have their own alerts; a kept Failed run must not page forever."""
    metrics = Metrics()
    metrics.saw("a", "Running", stalled=True)
    metrics.saw("a", phase, stalled=True)
    assert _sample(metrics, "emrops_serviceactions_stalled") == 0.0


async def test_an_ambiguous_failure_is_not_counted_stalled(store: FakeStore) -> None:
    """Unknown has its own alert (EmropsRunsUnknown): the stalled gauge stays 0 for it."""
    emr = FakeEmr(submit_error=OutcomeUnknownError("read timeout after sending"))
    svc = services(store, emr, [])
    supervisor = Supervisor(svc)
    supervisor.observe("ADDED", store.add(service_action()))
    obj = await wait_for_phase(store, "sa", {"Unknown"})
    assert any(c["type"] == "Stalled" and c["status"] == "True" for c in obj["status"]["conditions"])
    supervisor.observe("MODIFIED", copy.deepcopy(obj))  # the watch echo of that write
    await supervisor.stop()
    assert _sample(svc.metrics, "emrops_serviceactions", {"phase": "Unknown"}) == 1.0
    assert _sample(svc.metrics, "emrops_serviceactions_stalled") == 0.0


async def test_submit_latency_is_observed_once_per_run_from_its_start(store: FakeStore) -> None:
    emr = FakeEmr()
    svc = services(store, emr, [])
    supervisor = Supervisor(svc)
    supervisor.observe("ADDED", store.add(service_action()))
    obj = await wait_for_phase(store, "sa", {"Succeeded"})
    supervisor.observe("MODIFIED", copy.deepcopy(obj))  # re-reading the recorded operationId
    await supervisor.stop()
    restart = {"action": "restart"}
    assert _sample(svc.metrics, "emrops_submit_latency_seconds_count", restart) == 1.0
    seconds = _sample(svc.metrics, "emrops_submit_latency_seconds_sum", restart)
    assert seconds is not None and 0.0 <= seconds < 5.0
    assert _sample(svc.metrics, "emrops_serviceactions_stalled") == 0.0


async def test_submit_latency_counts_from_the_approval_not_from_the_hours_suspended(store: FakeStore) -> None:
    offset = timedelta()
    svc = replace(services(store, FakeEmr(), []), clock=lambda: datetime.now(UTC) + offset)
    supervisor = Supervisor(svc)
    store.watch(supervisor)
    body = service_action()
    body["spec"]["suspend"] = True
    supervisor.observe("ADDED", store.add(body))
    await wait_for_phase(store, "sa", {"Suspended"})
    offset = timedelta(hours=2)  # the run waits two hours for a person
    store.set_spec("sa", "suspend", False)
    await wait_for_phase(store, "sa", {"Succeeded"})
    await supervisor.stop()
    seconds = _sample(svc.metrics, "emrops_submit_latency_seconds_sum", {"action": "restart"})
    assert seconds is not None and seconds < 60.0
