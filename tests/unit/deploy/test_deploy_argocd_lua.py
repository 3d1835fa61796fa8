"""The Argo CD health check and "rerun" action, run in Lua 5.1 (Argo CD's dialect) with lupa."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from health_fixtures import Case, cases, rendered, service_action
from lupa import lua51

from emrops.api.status import Phase

ARGOCD = Path(__file__).resolve().parents[3] / "deploy" / "argocd"


def run_lua(script: Path, obj: dict[str, Any]) -> Any:
    """Run an Argo CD script the way Argo CD does: ``obj`` global, the script's return value back."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    return lua.execute(script.read_text())


def lua_to_python(value: Any) -> Any:
    if lupa_table(value):
        keys = list(value.keys())
        if keys and all(isinstance(k, int) for k in keys):
            return [lua_to_python(value[k]) for k in sorted(keys)]
        return {k: lua_to_python(v) for k, v in value.items()}
    return value


def lupa_table(value: Any) -> bool:
    return type(value).__name__ == "_LuaTable"


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_health(case: Case) -> None:
    hs = lua_to_python(run_lua(ARGOCD / "health.lua", case.obj))
    assert hs["status"] == case.argocd
    assert isinstance(hs["message"], str) and hs["message"]
    if case.message is not None:
        assert case.message in hs["message"]


def test_health_never_reports_suspended_or_missing() -> None:
    seen = {lua_to_python(run_lua(ARGOCD / "health.lua", c.obj))["status"] for c in cases()}
    assert seen == {"Healthy", "Progressing", "Degraded"}


def test_stalled_condition_wins_over_a_stale_ready_phase() -> None:
    # Degraded is reported from Stalled=True even if phase still says Running.
    obj = service_action(rendered(Phase.RUNNING, "waiting for a human", stalled=True))
    assert lua_to_python(run_lua(ARGOCD / "health.lua", obj))["status"] == "Degraded"


@pytest.mark.parametrize(
    ("phase", "enabled"),
    [
        (None, False),
        (Phase.PENDING, False),
        (Phase.QUEUED, False),
        (Phase.SUBMITTING, False),
        (Phase.RUNNING, False),
        (Phase.SUCCEEDED, True),
        (Phase.FAILED, True),
        (Phase.UNKNOWN, True),
    ],
)
def test_rerun_offered_only_when_the_run_has_ended(phase: Phase | None, enabled: bool) -> None:
    obj = service_action(None if phase is None else rendered(phase, "x"))
    actions = lua_to_python(run_lua(ARGOCD / "actions" / "discovery.lua", obj))
    assert set(actions) == {"rerun"}
    assert actions["rerun"]["disabled"] is (not enabled)


@pytest.mark.parametrize("annotations", [None, {"team": "data", "emrops.io/run-requested-at": "old"}])
def test_rerun_sets_the_annotation_to_now(annotations: dict[str, str] | None) -> None:
    obj = service_action(rendered(Phase.FAILED, "boom"))
    if annotations is not None:
        obj["metadata"]["annotations"] = dict(annotations)
    before = datetime.now(UTC).replace(microsecond=0)
    result = lua_to_python(run_lua(ARGOCD / "actions" / "rerun" / "action.lua", obj))
    after = datetime.now(UTC)

    value = result["metadata"]["annotations"]["emrops.io/run-requested-at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value)
    stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stamp <= after
    if annotations is not None:
        assert result["metadata"]["annotations"]["team"] == "data"
    # Nothing but the annotation changes.
    assert result["spec"] == obj["spec"]
    assert result["metadata"]["name"] == obj["metadata"]["name"]
