"""Prometheus metrics of the operator, in a registry of their own (served on ``--metrics-port``).

- ``emrops_emr_api_calls_total{action, code}``: EMR calls by action and outcome code ("OK" on
  success, EMR's error code, or the transport failure).
- ``emrops_retries_total{reason}``: RunApplicationAction attempts that will be retried.
- ``emrops_throttles_total{action}``: calls EMR throttled.
- ``emrops_operation_duration_seconds{action, phase}``: from submission to the run's end.
- ``emrops_submit_latency_seconds{action}``: from the run's start (its acceptance, or its approval
  when later) to the write that records EMR's operationId; observed once per run.
- ``emrops_serviceactions{phase}``: ServiceActions this operator sees, by phase.
- ``emrops_serviceactions_stalled``: runs still in progress whose Stalled condition is True (an EMR
  operation waiting on a person); ``Failed`` and ``Unknown`` runs are not counted here.
- ``emrops_events_total{outcome}``: Kubernetes Events by what became of them (posted, aggregated
  into an earlier one, rate_limited, dropped for a full queue, failed, quiet: not posted by policy).
- ``emrops_build_info{version, python, kopf}``: always 1; the labels say what runs.
- ``process_*``: the process's resident and virtual memory, CPU seconds, open and maximum file
  descriptors and start time (Prometheus' standard process collector, from /proc).
"""

from __future__ import annotations

import platform
from collections import Counter as Tally
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

from emrops import __version__

#: Phases whose Stalled condition the stalled gauge leaves out (see ``Metrics.saw``).
_SETTLED_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})
_DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))
# 50 ms (an idle operator, a quick EMR answer) to 5 min (a long per-cluster queue or retries).
_SUBMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.api_calls = Counter(
            "emrops_emr_api_calls",
            "EMR API calls by action and outcome code.",
            ["action", "code"],
            registry=self.registry,
        )
        self.retries = Counter(
            "emrops_retries",
            "RunApplicationAction attempts to be retried, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.throttles = Counter(
            "emrops_throttles",
            "EMR calls that were throttled, by action.",
            ["action"],
            registry=self.registry,
        )
        self.operation_duration = Histogram(
            "emrops_operation_duration_seconds",
            "Seconds from submission to the end of a run, by action and final phase.",
            ["action", "phase"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.submit_latency = Histogram(
            "emrops_submit_latency_seconds",
            "Seconds from a run's start (acceptance or approval) to the recorded operationId, by action.",
            ["action"],
            buckets=_SUBMIT_BUCKETS,
            registry=self.registry,
        )
        self.serviceactions = Gauge(
            "emrops_serviceactions",
            "ServiceActions seen by this operator, by phase.",
            ["phase"],
            registry=self.registry,
        )
        # Set at once, so a rule reading it has a series (0) before anything stalls.
        self.stalled = Gauge(
            "emrops_serviceactions_stalled",
            "ServiceActions still in progress (not Succeeded, Failed or Unknown) whose Stalled "
            "condition is True.",
            registry=self.registry,
        )
        self.stalled.set(0)
        self.events = Counter(
            "emrops_events",
            "Kubernetes Events by outcome: posted, aggregated, rate_limited, dropped, failed, quiet.",
            ["outcome"],
            registry=self.registry,
        )
        build_info = Gauge(
            "emrops_build_info",
            "Always 1; the labels say which emrops, Python and kopf run.",
            ["version", "python", "kopf"],
            registry=self.registry,
        )
        build_info.labels(
            version=__version__, python=platform.python_version(), kopf=_version_of("kopf")
        ).set(1)
        ProcessCollector(registry=self.registry)
        self._phases: dict[str, str] = {}
        self._counts: Tally[str] = Tally()
        self._stalled: set[str] = set()

    def saw(self, uid: str, phase: str | None, *, stalled: bool = False) -> None:
        """Track one object's phase (None: deleted) and Stalled condition for the gauges, in O(1).

        The stalled gauge counts runs still in progress only: every ``Failed`` and ``Unknown`` run
        has ``Stalled=True`` too, but those have their own signals (the failure ratio, the Unknown
        phase), and a kept ``Failed`` run would otherwise hold an alert on for as long as it exists.
        """
        if stalled and phase is not None and phase not in _SETTLED_PHASES:
            self._stalled.add(uid)
        else:
            self._stalled.discard(uid)
        self.stalled.set(len(self._stalled))
        before = self._phases.get(uid)
        if before == phase:
            return
        if before is not None:
            self._counts[before] -= 1
            self.serviceactions.labels(phase=before).set(self._counts[before])
        if phase is None:
            self._phases.pop(uid, None)
            return
        self._phases[uid] = phase
        self._counts[phase] += 1
        self.serviceactions.labels(phase=phase).set(self._counts[phase])

    def serve(self, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
        start_http_server(port, addr=host, registry=self.registry)


def _version_of(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
