"""Flux health: the CEL healthCheckExprs (evaluated with cel-python) and kstatus's own rules.

``flux_cel_status`` follows kustomize-controller's CEL status reader: a stale
``status.observedGeneration`` is in progress, then inProgress, failed and current are tried in
that order, anything else is in progress, and an evaluation error is Unknown.
``kstatus_status`` is kstatus's generic rule for custom resources (what ``healthChecks`` without
expressions uses): stale generation, then Reconciling=True, then Stalled=True, else Current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from health_fixtures import Case, cases

FLUX = Path(__file__).resolve().parents[3] / "deploy" / "flux"


def expressions() -> dict[str, str]:
    (entry,) = yaml.safe_load((FLUX / "healthcheckexprs.yaml").read_text())
    assert (entry["apiVersion"], entry["kind"]) == ("emrops.io/v1alpha1", "ServiceAction")
    return {key: entry[key] for key in ("inProgress", "failed", "current")}


def evaluate(expression: str, obj: dict[str, Any]) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    result = program.evaluate(activation)
    if isinstance(result, CELEvalError):
        raise result
    return bool(result)


def flux_cel_status(obj: dict[str, Any], exprs: dict[str, str]) -> str:
    status = obj.get("status") or {}
    if "observedGeneration" in status and status["observedGeneration"] != obj["metadata"]["generation"]:
        return "InProgress"
    try:
        for key, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
            if evaluate(exprs[key], obj):
                return verdict
    except Exception:  # cel-go reports a missing top-level field as an error: Unknown in Flux
        return "Unknown"
    return "InProgress"


def kstatus_status(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if "observedGeneration" in status and status["observedGeneration"] != obj["metadata"]["generation"]:
        return "InProgress"
    for condition in status.get("conditions", []):
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    return "Current"


def test_kustomization_example_embeds_the_same_expressions() -> None:
    example = yaml.safe_load((FLUX / "kustomization.yaml").read_text())
    (entry,) = example["spec"]["healthCheckExprs"]
    assert {key: entry[key] for key in ("inProgress", "failed", "current")} == expressions()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_cel_health(case: Case) -> None:
    verdict = flux_cel_status(case.obj, expressions())
    if case.name == "no status":
        # cel-go errors on the missing top-level `status` (Unknown, Flux keeps waiting); cel-python
        # may instead call it in progress. Either way it is never healthy or failed.
        assert verdict in {"Unknown", "InProgress"}
    else:
        assert verdict == case.kstatus


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_kstatus_health(case: Case) -> None:
    verdict = kstatus_status(case.obj)
    if case.obj.get("status", {}).get("conditions") is None:
        # kstatus has nothing to read before emrops writes conditions and calls the object Current:
        # the reason docs/gitops.md recommends healthCheckExprs, which demand Ready=True.
        assert verdict in {"Current", "InProgress"}
    else:
        assert verdict == case.kstatus


def test_cel_demands_ready_where_kstatus_would_not() -> None:
    exprs = expressions()
    bare = next(c for c in cases() if c.name == "phase only (no conditions yet)").obj
    assert kstatus_status(bare) == "Current"
    assert flux_cel_status(bare, exprs) == "InProgress"
