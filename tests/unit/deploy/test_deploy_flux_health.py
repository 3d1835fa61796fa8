"""Flux health: the CEL healthCheckExprs (evaluated with cel-python) and kstatus's own rules.

``flux_cel_status`` follows Flux's CEL status evaluator (fluxcd/pkg runtime/cel,
StatusEvaluator.Evaluate): an int ``status.observedGeneration`` that differs from
``metadata.generation`` is in progress, then inProgress, failed and current are tried in that
order, anything else is in progress, and an evaluation error is Unknown (the generic status reader
turns the error into UnknownStatus, which Flux keeps waiting on until its timeout).

cel-python is more lenient than cel-go in one respect that matters here: Flux parses the
expressions without declaring variables, so cel-go fails on a top-level field the object lacks
(Flux's docs: ``has()`` errors when ``status`` does not exist yet), while cel-python's ``has()``
answers false. ``evaluate`` applies cel-go's rule before handing the expression to cel-python (exact for
expressions whose every branch reads ``status``, as ours do: cel-go's ``||`` and ``&&`` can
absorb an error from one side).

``kstatus_status`` is kstatus's generic rule for custom resources (cli-utils
pkg/kstatus/status: checkGenericProperties, then checkReadyCondition, else Current), what
``healthChecks`` without expressions uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from health_fixtures import Case, cases, rendered, service_action

from emrops.api.status import Phase

FLUX = Path(__file__).resolve().parents[3] / "deploy" / "flux"

#: An identifier that starts a field path (not one after a dot, not a quoted word).
_PATH_START = re.compile(r"(?<![.\w'])([A-Za-z_]\w*)\s*(?=\.)")
#: The variable a macro binds, as ``c`` in ``list.exists(c, ...)``.
_MACRO_VARIABLE = re.compile(r"\.\w+\(\s*([A-Za-z_]\w*)\s*,")


class MissingTopLevelField(Exception):
    """cel-go: ``no such attribute`` for a variable absent from the activation."""


def expressions() -> dict[str, str]:
    (entry,) = yaml.safe_load((FLUX / "healthcheckexprs.yaml").read_text())
    assert (entry["apiVersion"], entry["kind"]) == ("emrops.io/v1alpha1", "ServiceAction")
    return {key: entry[key] for key in ("inProgress", "failed", "current")}


def evaluate(expression: str, obj: dict[str, Any]) -> bool:
    top_level = set(_PATH_START.findall(expression)) - set(_MACRO_VARIABLE.findall(expression))
    missing = top_level - obj.keys()
    if missing:
        raise MissingTopLevelField(", ".join(sorted(missing)))
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    activation = {key: json_to_cel(value) for key, value in obj.items()}
    result = program.evaluate(activation)
    if isinstance(result, CELEvalError):
        raise result
    return bool(result)


def flux_cel_status(obj: dict[str, Any], exprs: dict[str, str]) -> str:
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if isinstance(observed, int) and observed != obj["metadata"]["generation"]:
        return "InProgress"
    try:
        for key, verdict in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
            if evaluate(exprs[key], obj):
                return verdict
    except Exception:  # an evaluation error: Flux reports the object Unknown
        return "Unknown"
    return "InProgress"


def kstatus_status(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if "observedGeneration" in status and status["observedGeneration"] != obj["metadata"]["generation"]:
        return "InProgress"
    conditions = status.get("conditions", [])
    for condition in conditions:
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    for condition in conditions:
        if condition["type"] == "Ready":
            return "Current" if condition["status"] == "True" else "InProgress"
    return "Current"  # no condition it knows: "Resource is current"


def test_kustomization_example_embeds_the_same_expressions() -> None:
    example = yaml.safe_load((FLUX / "kustomization.yaml").read_text())
    (entry,) = example["spec"]["healthCheckExprs"]
    assert {key: entry[key] for key in ("inProgress", "failed", "current")} == expressions()


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_cel_health(case: Case) -> None:
    assert flux_cel_status(case.obj, expressions()) == case.cel


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_kstatus_health(case: Case) -> None:
    assert kstatus_status(case.obj) == case.kstatus


def test_cel_is_never_current_before_emrops_has_looked() -> None:
    # kstatus alone calls an object Current until emrops writes its first status (conditions
    # and observedGeneration together); with the expressions, no such window exists.
    exprs = expressions()
    for case in cases():
        status = case.obj.get("status")
        if status is None or "observedGeneration" not in status or "conditions" not in status:
            assert case.kstatus == "Current"
            assert flux_cel_status(case.obj, exprs) in {"InProgress", "Unknown"}


def test_the_first_status_emrops_writes_is_in_progress_for_both() -> None:
    # The window under plain kstatus closes with emrops' first write: Pending, with conditions.
    first = service_action(rendered(Phase.PENDING, "Accepted; waiting to submit RunApplicationAction"))
    assert kstatus_status(first) == "InProgress"
    assert flux_cel_status(first, expressions()) == "InProgress"


def test_a_missing_status_is_an_error_not_false() -> None:
    # What cel-go does with Flux's undeclared variables; the reason "no status" is Unknown.
    with pytest.raises(MissingTopLevelField):
        evaluate(expressions()["inProgress"], service_action(None))
    assert evaluate("has(status.phase)", service_action({})) is False
