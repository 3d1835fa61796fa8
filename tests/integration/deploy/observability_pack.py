"""The chart's observability pack as the tests use it: promtool, and the rendered rule and dashboard.

- ``find_or_build_promtool``: ``$EMROPS_PROMTOOL``, else hack/promtool.sh's cached build (built now
  when missing, from the Prometheus Go module). Without Go and without a build the test is
  skipped, or fails under ``EMROPS_REQUIRE_CONTROL_PLANE=1`` (``make test``, CI).
- ``Promtool``: ``check rules``, ``test rules`` and a query parse, on files in a work folder.
- ``PACK``: the values that turn the pack on; ``rule_groups`` and ``dashboard_of`` read a render.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from chart_tools import ROOT, one

from fixtures.builds import find_or_build

BUILD_SCRIPT = ROOT / "hack" / "promtool.sh"
#: The chart's values with the whole pack on (and a ServiceMonitor, as users run it).
PACK: dict[str, Any] = {
    "metrics": {"serviceMonitor": {"enabled": True}},
    "observability": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}},
}


def find_or_build_promtool() -> str:
    # A cold build compiles much of Prometheus: give it time on a busy 2-core machine.
    return find_or_build("EMROPS_PROMTOOL", BUILD_SCRIPT, "promtool", hint="make promtool", timeout=1800)


class Promtool:
    """promtool on files written into ``workdir``."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._count = 0

    def _write(self, stem: str, content: Any) -> Path:
        self._count += 1
        path = self.workdir / f"{stem}-{self._count}.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=120, check=False, cwd=self.workdir
        )

    def rules_file(self, groups: list[dict[str, Any]]) -> Path:
        """A Prometheus rules file: what prometheus-operator writes from a PrometheusRule's spec."""
        return self._write("rules", {"groups": groups})

    def check_rules(self, groups: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        return self.run("check", "rules", "--lint=all", "--lint-fatal", str(self.rules_file(groups)))

    def test_rules(
        self, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
    ) -> subprocess.CompletedProcess[str]:
        """``promtool test rules`` of ``tests`` (its unit-test cases) on a rules file of ``groups``."""
        # promtool joins rule_files to the test file's folder: name the file, not its path.
        rules = self.rules_file(groups).name
        unit = self._write("tests", {"rule_files": [rules], "evaluation_interval": "1m", "tests": tests})
        return self.run("test", "rules", str(unit))

    def check_queries(self, queries: list[str]) -> subprocess.CompletedProcess[str]:
        """Parse each query as Prometheus does (``check rules`` on recording rules wrapping them)."""
        rules = [{"record": f"emrops:query_{n}", "expr": q} for n, q in enumerate(queries)]
        return self.run("check", "rules", str(self.rules_file([{"name": "queries", "rules": rules}])))


def rule_groups(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = one(docs, "PrometheusRule")["spec"]["groups"]
    return groups


def alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_groups(docs) for r in g["rules"] if "alert" in r}


def pack_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pack's objects (labelled app.kubernetes.io/component: observability)."""
    return [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "observability"]


def dashboard_config_map(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (config_map,) = [d for d in pack_objects(docs) if d["kind"] == "ConfigMap"]
    return config_map


def dashboard_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(dashboard_config_map(docs)["data"]["emrops.json"])
    return board
