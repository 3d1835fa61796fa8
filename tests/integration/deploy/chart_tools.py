"""Helpers for the chart's integration tests: render the chart, read rendered objects.

Finding helm (``require_helm``) is ``fixtures.controlplane``'s, shared with the unit tests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "emrops"
# The chart's kubeVersion is checked against the version helm assumes, and a helm built without
# Helm's release ldflags (hack/control-plane.sh's) assumes v1.20: render for the tested version.
KUBE_VERSION = "1.36.0"
HOOK = "helm.sh/hook"


class Helm:
    """The helm binary, run on the chart with a values dict (written to a file, never --set)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self._count = 0

    def _values_file(self, values: dict[str, Any]) -> Path:
        self._count += 1
        path = self.workdir / f"values-{self._count}.yaml"
        path.write_text(yaml.safe_dump(values))
        return path

    def run(self, *args: str, values: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *args]
        if args and args[0] in ("template", "lint"):
            command += ["--kube-version", KUBE_VERSION]
        if values is not None:
            command += ["--values", str(self._values_file(values))]
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.workdir / "cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "config"),
            "HELM_DATA_HOME": str(self.workdir / "data"),
        }
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)

    def template(
        self,
        values: dict[str, Any] | None = None,
        *,
        release: str = "emrops",
        namespace: str = "emrops-system",
        skip_tests: bool = False,
    ) -> str:
        """The rendered chart; with ``skip_tests`` without the `helm test` hooks, as an install holds."""
        extra = ["--skip-tests"] if skip_tests else []
        result = self.run(
            "template", release, str(CHART), "--namespace", namespace, *extra, values=values or {}
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def hooks_of(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects `helm test` creates (annotated ``helm.sh/hook: test``)."""
    return [d for d in docs if (d["metadata"].get("annotations") or {}).get(HOOK) == "test"]


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    (operator,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def env_of(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e for e in container(docs).get("env", [])}
