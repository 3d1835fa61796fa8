"""Every metric the chart's alerts and dashboard read exists on a real operator's /metrics.

The operator runs against the real apiserver and the EMR emulator through the paths the pack
watches: a throttled then retried submission, a refusal (Failed), an ambiguous failure (Unknown)
and a run queued behind it. Then every series selector of every rule and every dashboard query
must name a metric the operator exposes (a histogram's _bucket, _sum and _count as such), and
every label value a selector matches with ``=`` (or a plain ``=~"A|B"``) must be one the
operator gives that metric: a misspelt phase would otherwise make an alert that never fires.

Not the operator's, and so not checked here (docs/observability.md says so): ``up``, which
Prometheus makes for each scrape, and the kube-state-metrics series of EmropsOperatorNotReady.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from chart_tools import Helm, documents
from observability_pack import PACK, alerts
from prometheus_client.parser import text_string_to_metric_families

from fixtures.controlplane import require_helm
from fixtures.dashboard import DASHBOARD, queries, variable_queries
from fixtures.promql import Selector, selectors
from fixtures.suites import StartEmulator, StartOperator
from harness.kube import Kube
from harness.objects import component_restart
from harness.processes import wait_for

pytestmark = pytest.mark.integration

#: Made by Prometheus for each scrape.
PROMETHEUS = {"up"}
#: kube-state-metrics' (EmropsOperatorNotReady; observability.prometheusRule.kubeStateMetrics).
KUBE_STATE_METRICS = {"kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"}
#: Labels Prometheus adds from the scrape target, not the operator.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "endpoint", "container"}


def exposed(text: str) -> dict[str, dict[str, set[str]]]:
    """Sample name -> label name -> the values seen, from a /metrics answer."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = found[sample.name]
            for label, value in sample.labels.items():
                labels[label].add(value)
    return found


def problems(where: str, selector: Selector, metrics: dict[str, dict[str, set[str]]]) -> list[str]:
    if selector.name is None:
        return [f"{where}: a selector without a metric name"]
    if selector.name in PROMETHEUS | KUBE_STATE_METRICS:
        return []
    if selector.name not in metrics:
        return [f"{where}: {selector.name} is not on /metrics"]
    labels = metrics[selector.name]
    found = []
    for matcher in selector.matchers:
        if matcher.label in TARGET_LABELS:
            continue
        if matcher.label not in labels:
            found.append(f"{where}: {selector.name} has no label {matcher.label}")
            continue
        if matcher.op == "=":
            wanted = {matcher.value}
        elif matcher.op == "=~" and re.fullmatch(r"[\w|]+", matcher.value):
            wanted = set(matcher.value.split("|"))
        else:
            continue
        missing = wanted - labels.get(matcher.label, set())
        if missing:
            seen = sorted(labels.get(matcher.label, set()))
            found.append(
                f"{where}: {selector.name}{{{matcher.label}}} never is {sorted(missing)} (seen: {seen})"
            )
    return found


@pytest.fixture
def used(tmp_path: Path) -> list[tuple[str, Selector]]:
    """(where, selector) for every series the rendered rule and the dashboard read."""
    docs = documents(Helm(require_helm(), tmp_path).template(PACK))
    found = [(f"alert {name}", s) for name, rule in alerts(docs).items() for s in selectors(rule["expr"])]
    board = json.loads(DASHBOARD.read_text())
    found += [(f"panel {title!r}", s) for title, expr in queries(board) for s in selectors(expr)]
    found += [(f"variable ${name}", s) for name, expr in variable_queries(board) for s in selectors(expr)]
    return found


def test_every_metric_the_pack_reads_is_exposed(
    kube: Kube,
    start_emulator: StartEmulator,
    start_operator: StartOperator,
    used: list[tuple[str, Selector]],
) -> None:
    emulator = start_emulator()
    operator = start_operator(emulator)

    # Throttled once, then retried (Pending) and Succeeded: recording its operationId observes
    # emrops_submit_latency_seconds (emrops_serviceactions_stalled is there from the start).
    emulator.faults({"action": "RunApplicationAction", "code": "ThrottlingException", "count": 1})
    kube.apply(component_restart("throttled", "YARN", "NodeManager"))
    kube.wait_phase(["throttled"], frozenset({"Succeeded"}))
    # Refused by EMR: Failed.
    emulator.faults({"action": "RunApplicationAction", "code": "InvalidParameter", "count": 1})
    kube.apply(component_restart("refused", "HIVE", "HiveServer2"))
    kube.wait_phase(["refused"], frozenset({"Failed"}))
    # An ambiguous failure: Unknown, holding its cluster for the overlapping run after it (Queued).
    emulator.faults({"action": "RunApplicationAction", "code": "InternalError", "count": 1})
    kube.apply(component_restart("ambiguous", "HDFS", "DataNode"))
    kube.wait_phase(["ambiguous"], frozenset({"Unknown"}))
    kube.apply(component_restart("queued", "HDFS", "DataNode"))
    kube.wait_phase(["queued"], frozenset({"Queued"}))
    phases = {name: (obj.get("status") or {}).get("phase") for name, obj in kube.all().items()}
    assert phases == {
        "throttled": "Succeeded",
        "refused": "Failed",
        "ambiguous": "Unknown",
        "queued": "Queued",
    }

    # The gauge follows the watch: wait until it has seen the last change.
    metrics: dict[str, dict[str, set[str]]] = {}

    def settled() -> bool:
        nonlocal metrics
        metrics = exposed(operator.metrics())
        return "Queued" in metrics.get("emrops_serviceactions", {}).get("phase", set())

    wait_for(settled, timeout=30, what="emrops_serviceactions{phase='Queued'}")
    assert len(used) > 20, used
    found = [problem for where, selector in used for problem in problems(where, selector, metrics)]
    assert not found, "\n".join(found)

    # The check can fail: a misspelt value, label or metric is caught against the same scrape.
    for wrong in (
        'emrops_serviceactions{phase="Unknwn"}',
        'emrops_throttles_total{reason="x"}',
        "emrops_runs",
    ):
        assert problems("wrong", selectors(wrong)[0], metrics), wrong
