"""The chart's observability pack: the PrometheusRule passes promtool's checks and its unit tests
(each alert fires on the series it is about and stays quiet on others), every dashboard query
parses, and the values that shape the pack do what docs/observability.md says.

That every metric a rule or a panel reads exists is test_deploy_observability_metrics.py's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from chart_tools import CHART, ROOT, Helm, documents, of_kind
from observability_pack import (
    PACK,
    Promtool,
    alerts,
    dashboard_config_map,
    dashboard_of,
    find_or_build_promtool,
    pack_objects,
    rule_groups,
)

from fixtures.controlplane import require_helm
from fixtures.dashboard import DASHBOARD, queries

pytestmark = pytest.mark.integration

SELECTOR = {"job": "emrops-metrics", "namespace": "emrops-system"}  # the default release's scrape
RUNBOOK = "https://github.com/emrops/emrops/blob/main/docs/troubleshooting.md"
# A limit whose ratios come out round: 195Mi is 97.5% of it.
LIMIT = "200Mi"
VALUES = {**PACK, "resources": {"limits": {"memory": LIMIT}}}
ALERTS = {
    "EmropsOperatorDown",
    "EmropsOperatorNotReady",
    "EmropsRunsUnknown",
    "EmropsRunsStalled",
    "EmropsRunsFailing",
    "EmropsThrottlingSustained",
    "EmropsMemoryNearLimit",
}


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(require_helm(), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def promtool(tmp_path_factory: pytest.TempPathFactory) -> Promtool:
    return Promtool(find_or_build_promtool(), tmp_path_factory.mktemp("promtool"))


@pytest.fixture(scope="module")
def pack(helm: Helm) -> list[dict[str, Any]]:
    return documents(helm.template(VALUES))


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    """A promtool input series of this release's scrape (plus ``labels``)."""
    body = ",".join(f'{k}="{v}"' for k, v in {**SELECTOR, **labels}.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def fired(
    alert: str, description: str, summary: str, severity: str = "warning", **labels: str
) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": severity, **labels},
        "exp_annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{RUNBOOK}#{alert.lower()}",
        },
    }


def case(at: str, alert: str, *expected: dict[str, Any]) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": list(expected)}


def unit(input_series: list[dict[str, str]], *cases: dict[str, Any]) -> dict[str, Any]:
    """One promtool test: series sampled every minute, and what each alert is at given times."""
    return {"interval": "1m", "input_series": input_series, "alert_rule_test": list(cases)}


def assert_passes(promtool: Promtool, pack: list[dict[str, Any]], *tests: dict[str, Any]) -> None:
    result = promtool.test_rules(rule_groups(pack), list(tests))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the rule ------------------------------------------------------------------------------------


def test_the_pack_is_off_by_default(helm: Helm) -> None:
    assert not pack_objects(documents(helm.template()))


def test_helm_lint_passes_with_the_pack_on(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(CHART), values=VALUES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_rendered_rule(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    result = promtool.check_rules(rule_groups(pack))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout, result.stdout


def test_every_alert_links_to_its_runbook_section(pack: list[dict[str, Any]]) -> None:
    assert set(alerts(pack)) == ALERTS
    headings = re.findall(r"^### (\S+)$", (ROOT / "docs" / "troubleshooting.md").read_text(), re.MULTILINE)
    for name, rule in alerts(pack).items():
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK}#{name.lower()}"
        assert name in headings, f"docs/troubleshooting.md has no '### {name}' section"
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["definitions"]["alertName"]["enum"]) == ALERTS


def test_operator_down_fires_when_no_replica_is_up(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    alert = "EmropsOperatorDown"
    down = fired(
        alert,
        "No replica of the emrops operator (emrops-system/emrops-metrics) has answered a scrape for 5 "
        "minutes. New ServiceActions wait and running ones are not followed until one is back.",
        "No emrops operator replica is up: ServiceActions are not being run.",
        severity="critical",
        **SELECTOR,
    )
    # Another release's operator, down or up, is not ours.
    other = 'up{job="other-metrics",namespace="emrops-system"}'
    assert_passes(
        promtool,
        pack,
        # Two replicas; the leader goes down at 10m, the standby keeps answering until 20m.
        unit(
            [
                series("up", "1x9 0x30", pod="emrops-a"),
                series("up", "1x19 0x20", pod="emrops-b"),
                {"series": other, "values": "0x40"},
            ],
            case("15m", alert),
            case("22m", alert),  # pending: down for 2 minutes
            case("26m", alert, down),
        ),
        # No target at all (a deleted Deployment, a ServiceMonitor that selects nothing).
        unit([{"series": other, "values": "1x20"}], case("6m", alert, down)),
    )


def test_runs_unknown_fires_once_per_release_while_any_is_unknown(
    pack: list[dict[str, Any]], promtool: Promtool
) -> None:
    alert = "EmropsRunsUnknown"
    unknown = fired(
        alert,
        "2 ServiceAction run(s) seen by emrops-system/emrops-metrics are Unknown: EMR may or may not have "
        "run the action, and emrops will not call again on its own. Each holds its cluster's queue until "
        "acknowledged or re-run.",
        "ServiceActions are Unknown: a person must decide.",
        **SELECTOR,
    )
    gauge = "emrops_serviceactions"
    assert_passes(
        promtool,
        pack,
        unit(
            [
                # Both replicas report the same objects: one alert, not two.
                series(gauge, "0x4 2x5 0x5", phase="Unknown", pod="emrops-a"),
                series(gauge, "0x4 2x5 0x5", phase="Unknown", pod="emrops-b"),
                series(gauge, "7x15", phase="Failed", pod="emrops-a"),
            ],
            case("3m", alert),  # Failed runs are not Unknown
            case("5m", alert),  # pending
            case("7m", alert, unknown),
            case("13m", alert),  # acknowledged
        ),
    )


def test_runs_stalled_fires_after_15_minutes(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    alert = "EmropsRunsStalled"
    stalled = fired(
        alert,
        "3 ServiceAction(s) seen by emrops-system/emrops-metrics in progress have had their Stalled "
        "condition True for 15 minutes (an EMR operation waiting on a person; Failed and Unknown runs "
        "have their own alerts). Their Stalled condition says why.",
        "Runs in progress are Stalled: they will not progress on their own.",
        **SELECTOR,
    )
    gauge = "emrops_serviceactions_stalled"
    other = 'emrops_serviceactions_stalled{job="other-metrics",namespace="emrops-system"}'
    assert_passes(
        promtool,
        pack,
        # Both replicas report the same objects (one alert); stalled from 5m to 30m.
        unit(
            [
                series(gauge, "0x4 3x25 0x10", pod="emrops-a"),
                series(gauge, "0x4 3x25 0x10", pod="emrops-b"),
                {"series": other, "values": "9x40"},  # another release's: not ours
            ],
            case("3m", alert),
            case("12m", alert),  # pending: stalled for 7 minutes
            case("21m", alert, stalled),
            case("33m", alert),  # resolved (re-run, acknowledged or deleted)
        ),
        # Stalled for 10 minutes at a time, twice: never 15 minutes in a row.
        unit([series(gauge, "2x9 0x2 2x9 0x10", pod="emrops-a")], case("10m", alert), case("20m", alert)),
    )


def test_runs_failing_fires_above_the_failed_share(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    alert = "EmropsRunsFailing"
    failing = fired(
        alert,
        "50% of the runs that ended in the last hour ended Failed (threshold 0.25), for "
        "emrops-system/emrops-metrics.",
        "Many ServiceAction runs end Failed.",
        **SELECTOR,
    )

    def ended(succeeded_per_minute: int, failed_per_minute: int) -> list[dict[str, str]]:
        count = "emrops_operation_duration_seconds_count"
        return [
            series(count, f"0+{succeeded_per_minute}x90", action="restart", phase="Succeeded"),
            series(count, f"0+{failed_per_minute}x90", action="restart", phase="Failed"),
        ]

    assert_passes(
        promtool,
        pack,
        unit(ended(1, 1), case("30m", alert, failing)),
        unit(ended(9, 1), case("30m", alert)),  # one run in ten fails: below 25%
    )


def test_throttling_fires_only_when_sustained(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    alert = "EmropsThrottlingSustained"
    calls = "emrops_emr_api_calls_total"
    throttled = fired(
        alert,
        "20% of the EMR calls of emrops-system/emrops-metrics were throttled, for 15 minutes (threshold "
        "0.1): runs are delayed.",
        "EMR keeps throttling the operator's calls.",
        **SELECTOR,
    )
    assert_passes(
        promtool,
        pack,
        # 30 calls a minute, 6 of them throttled, from the start.
        unit(
            [
                series(calls, "0+24x60", action="GetOperation", code="OK"),
                series(calls, "0+6x60", action="GetOperation", code="Throttling.User"),
                series("emrops_throttles_total", "0+6x60", action="GetOperation"),
            ],
            case("10m", alert),
            case("25m", alert, throttled),
        ),
        # A burst: throttled for 10 minutes, then not; never 15 minutes in a row.
        unit(
            [
                series(calls, "0+30x60", action="GetOperation", code="OK"),
                series("emrops_throttles_total", "0+6x10 60x50", action="GetOperation"),
            ],
            case("12m", alert),
            case("30m", alert),
        ),
    )


def test_memory_near_limit_compares_with_the_charts_limit(
    pack: list[dict[str, Any]], promtool: Promtool
) -> None:
    alert = "EmropsMemoryNearLimit"
    mib = 1 << 20
    near = fired(
        alert,
        "emrops-a has used 97.5% of its 200Mi memory limit for 15 minutes (threshold 0.9); past the limit "
        "the kernel kills it.",
        "The emrops operator's memory is near its limit.",
        pod="emrops-a",
        **SELECTOR,
    )
    rss = "process_resident_memory_bytes"
    assert_passes(
        promtool,
        pack,
        unit(
            [
                series(rss, f"{195 * mib}x30", pod="emrops-a"),
                series(rss, f"{170 * mib}x30", pod="emrops-b"),  # 85%: below the threshold
            ],
            case("10m", alert),
            case("20m", alert, near),
        ),
    )


def test_not_ready_reads_kube_state_metrics(pack: list[dict[str, Any]], promtool: Promtool) -> None:
    alert = "EmropsOperatorNotReady"

    def ksm(name: str, deployment: str, values: str) -> dict[str, str]:
        labels = f'namespace="emrops-system",deployment="{deployment}",job="kube-state-metrics"'
        return {"series": f"{name}{{{labels}}}", "values": values}

    not_ready = fired(
        alert,
        "Only 1 emrops replica(s) have been available for 10 minutes, fewer than the Deployment "
        "emrops-system/emrops asks for: /readyz fails (the apiserver, the ServiceAction watch) or the "
        "pods do not start.",
        "emrops operator replicas are not ready.",
        namespace="emrops-system",
        deployment="emrops",
        job="kube-state-metrics",
    )
    assert_passes(
        promtool,
        pack,
        unit(
            [
                ksm("kube_deployment_spec_replicas", "emrops", "2x40"),
                ksm("kube_deployment_status_replicas_available", "emrops", "2x5 1x35"),
                # Another Deployment in the namespace is not the operator.
                ksm("kube_deployment_spec_replicas", "other", "1x40"),
                ksm("kube_deployment_status_replicas_available", "other", "0x40"),
            ],
            case("10m", alert),
            case("20m", alert, not_ready),
        ),
    )


# --- what the values change ---------------------------------------------------------------------


def with_rule(**rule: Any) -> dict[str, Any]:
    return {
        **VALUES,
        "observability": {**VALUES["observability"], "prometheusRule": {"enabled": True, **rule}},
    }


def test_alerts_can_be_left_out_and_labelled(helm: Helm) -> None:
    docs = documents(
        helm.template(
            with_rule(
                disabled={"EmropsThrottlingSustained": True, "EmropsRunsFailing": False},
                additionalRuleLabels={"team": "data", "severity": "page"},
                additionalRuleAnnotations={"dashboard": "https://grafana.example/d/emrops"},
                runbookUrl="https://docs.example/emrops/troubleshooting",
                labels={"release": "kube-prometheus-stack"},
                namespace="monitoring",
                interval="1m",
                extraRules=[
                    {"record": "emrops:runs:unknown", "expr": "max(emrops_serviceactions{phase='Unknown'})"}
                ],
            )
        )
    )
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "emrops"
    found = alerts(docs)
    assert set(found) == ALERTS - {"EmropsThrottlingSustained"}
    for name, alert in found.items():
        assert alert["labels"] == {"team": "data", "severity": "page"}
        assert alert["annotations"]["dashboard"] == "https://grafana.example/d/emrops"
        assert (
            alert["annotations"]["runbook_url"]
            == f"https://docs.example/emrops/troubleshooting#{name.lower()}"
        )
    (group,) = rule_groups(docs)
    assert group["interval"] == "1m"
    assert group["rules"][-1] == {
        "record": "emrops:runs:unknown",
        "expr": "max(emrops_serviceactions{phase='Unknown'})",
    }


def test_the_selector_and_thresholds_reach_every_query(helm: Helm) -> None:
    docs = documents(
        helm.template(
            with_rule(
                selector='job="emrops",cluster="prod"',
                thresholds={"failedRunsRatio": 0.5, "throttledCallsRatio": 0.2, "memoryLimitRatio": 0.8},
            )
        )
    )
    found = alerts(docs)
    for name in ALERTS - {"EmropsOperatorNotReady"}:
        assert 'job="emrops",cluster="prod"' in found[name]["expr"], name
        assert "emrops-metrics" not in found[name]["expr"], name
    assert found["EmropsRunsFailing"]["expr"].endswith("> 0.5")
    assert found["EmropsThrottlingSustained"]["expr"].endswith("> 0.2")
    assert found["EmropsMemoryNearLimit"]["expr"].endswith("> 0.8")


@pytest.mark.parametrize(
    ("memory", "bytes_"),
    [
        ("200Mi", 209715200),
        ("1Gi", 1073741824),
        ("1.5Gi", 1610612736),
        ("500M", 500000000),
        (268435456, 268435456),
    ],
)
def test_the_memory_limit_is_read_in_bytes(helm: Helm, memory: Any, bytes_: int) -> None:
    docs = documents(helm.template({**VALUES, "resources": {"limits": {"memory": memory}}}))
    assert f"/ {bytes_}\n" in alerts(docs)["EmropsMemoryNearLimit"]["expr"]


def test_alerts_that_cannot_hold_are_left_out(helm: Helm) -> None:
    # No memory limit: nothing to compare with. No kube-state-metrics: no readiness series.
    no_limit = {**with_rule(kubeStateMetrics=False), "resources": {"limits": None}}
    assert set(alerts(documents(helm.template(no_limit)))) == ALERTS - {
        "EmropsMemoryNearLimit",
        "EmropsOperatorNotReady",
    }
    # replicaCount 0 stops the operator on purpose.
    stopped = {**VALUES, "replicaCount": 0}
    assert set(alerts(documents(helm.template(stopped)))) == ALERTS - {
        "EmropsOperatorDown",
        "EmropsOperatorNotReady",
    }


def test_a_memory_limit_the_pack_cannot_read_fails_the_render(helm: Helm) -> None:
    result = helm.run(
        "template", "emrops", str(CHART), values={**VALUES, "resources": {"limits": {"memory": "2GB"}}}
    )
    assert result.returncode != 0
    assert "resources.limits.memory" in result.stderr


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"observability": {"prometheusRule": {"enabeld": True}}}, "enabeld"),
        ({"observability": {"prometheusRule": {"disabled": {"EmropsRunUnknown": True}}}}, "EmropsRunUnknown"),
        ({"observability": {"prometheusRule": {"thresholds": {"failedRunsRatio": 25}}}}, "failedRunsRatio"),
        ({"observability": {"prometheusRule": {"selector": '{job="emrops"}'}}}, "selector"),
        ({"observability": {"prometheusRule": {"extraRules": [{"expr": "up"}]}}}, "extraRules"),
        ({"observability": {"grafanaDashboard": {"label": {"grafana_dashboard": "1"}}}}, "label"),
        ({"metrics": {"enabled": False}, "observability": {"prometheusRule": {"enabled": True}}}, "enabled"),
        (
            {"metrics": {"enabled": False}, "observability": {"grafanaDashboard": {"enabled": True}}},
            "enabled",
        ),
    ],
)
def test_the_schema_refuses_bad_pack_values(helm: Helm, values: dict[str, Any], field: str) -> None:
    result = helm.run("template", "emrops", str(CHART), values=values)
    assert result.returncode != 0, f"accepted {values}"
    assert field in result.stderr, result.stderr


# --- the dashboard -------------------------------------------------------------------------------


def test_the_dashboard_config_map_is_what_the_sidecar_loads(pack: list[dict[str, Any]]) -> None:
    config_map = dashboard_config_map(pack)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "emrops-system"
    assert dashboard_of(pack) == json.loads(DASHBOARD.read_text())


def test_dashboard_labels_namespace_and_annotations_are_set_by_values(helm: Helm) -> None:
    board = {
        "enabled": True,
        "namespace": "monitoring",
        "labels": {"dashboards": "grafana"},
        "annotations": {"k8s-sidecar-target-directory": "/tmp/dashboards/EMR"},
    }
    docs = documents(helm.template({"observability": {"grafanaDashboard": board}}))
    config_map = dashboard_config_map(docs)
    assert config_map["metadata"]["namespace"] == "monitoring"
    # Helm merges maps: the default label stays unless set to null.
    assert config_map["metadata"]["labels"]["dashboards"] == "grafana"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == board["annotations"]
    board["labels"] = {"dashboards": "grafana", "grafana_dashboard": None}
    docs = documents(helm.template({"observability": {"grafanaDashboard": board}}))
    config_map = dashboard_config_map(docs)
    assert "grafana_dashboard" not in config_map["metadata"]["labels"]


def test_promtool_parses_every_dashboard_query(promtool: Promtool) -> None:
    found = queries(json.loads(DASHBOARD.read_text()))
    assert len(found) >= 15
    result = promtool.check_queries([expr for _, expr in found])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_queries_does_refuse_a_broken_query(promtool: Promtool) -> None:
    """The check above can fail: promtool parses what it is given."""
    result = promtool.check_queries(["sum(rate(emrops_throttles_total[5m])"])
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr)


def test_hack_promtool_script_is_what_the_tests_run() -> None:
    script = (ROOT / "hack" / "promtool.sh").read_text()
    assert "github.com/prometheus/prometheus/cmd/promtool@" in script
    assert Path(find_or_build_promtool()).is_file()
