"""The Argo CD health check, action discovery and "rerun" action, run the way Argo CD runs them.

Every case runs twice: in restricted lupa (unit, quick) and in gopher-lua through the harness
built from hack/argocd-lua/ (integration: it needs Go once, to build). The harness is what Argo
CD really runs; see ``argocd_lua`` for what each mirrors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argocd_lua import (
    DISCOVERY,
    HEALTH,
    RERUN,
    Harness,
    LuaError,
    RestrictedLupa,
    Runtime,
    find_or_build_harness,
)
from health_fixtures import Case, cases, rendered, service_action

from emrops.api.status import Phase

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="session")
def harness() -> Harness:
    return Harness(find_or_build_harness())


@pytest.fixture(params=["lupa", pytest.param("gopher-lua", marks=pytest.mark.integration)])
def lua(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "lupa":
        yield RestrictedLupa()
    else:
        yield request.getfixturevalue("harness")


# --- health ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_health(lua: Runtime, case: Case) -> None:
    hs = lua.health(HEALTH, case.obj)
    assert hs["status"] == case.argocd
    assert isinstance(hs["message"], str) and hs["message"]
    if case.message is not None:
        assert case.message in hs["message"]


def test_health_reports_suspended_only_at_rest_and_never_missing(lua: Runtime) -> None:
    seen = {c.name: lua.health(HEALTH, c.obj)["status"] for c in cases()}
    assert set(seen.values()) == {"Healthy", "Progressing", "Degraded", "Suspended"}
    assert {name for name, health in seen.items() if health == "Suspended"} == {"Suspended", "Scheduled"}


def test_stalled_condition_wins_over_a_stale_ready_phase(lua: Runtime) -> None:
    # Degraded is reported from Stalled=True even if phase still says Running.
    obj = service_action(rendered(Phase.RUNNING, "waiting for a human", stalled=True))
    assert lua.health(HEALTH, obj)["status"] == "Degraded"


# --- discovery ---------------------------------------------------------------------------------


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
def test_rerun_offered_only_when_the_run_has_ended(lua: Runtime, phase: Phase | None, enabled: bool) -> None:
    obj = service_action(None if phase is None else rendered(phase, "x"))
    actions = lua.discovery(DISCOVERY, obj)
    assert set(actions) == {"rerun"}
    assert actions["rerun"]["disabled"] is (not enabled)


def _without_observed_generation(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "observedGeneration"}


@pytest.mark.parametrize(
    "obj",
    [
        # The spec changed after the run ended: the phase shown is the old spec's.
        pytest.param(service_action(rendered(Phase.SUCCEEDED, "done"), generation=2), id="generation ahead"),
        pytest.param(
            service_action(rendered(Phase.FAILED, "boom"), generation=3), id="Failed, generation ahead"
        ),
        pytest.param(
            service_action(_without_observed_generation(rendered(Phase.FAILED, "x"))),
            id="no observedGeneration",
        ),
        pytest.param(service_action({}), id="empty status"),
        pytest.param(service_action(None), id="no status"),
    ],
)
def test_rerun_not_offered_while_the_generation_is_unobserved(lua: Runtime, obj: dict[str, Any]) -> None:
    assert lua.discovery(DISCOVERY, obj)["rerun"]["disabled"] is True


# --- the rerun action --------------------------------------------------------------------------


def _stamp_of(result: dict[str, Any]) -> datetime:
    value = result["metadata"]["annotations"]["emrops.io/run-requested-at"]
    assert STAMP.fullmatch(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize("annotations", [None, {"team": "data", "emrops.io/run-requested-at": "old"}])
def test_rerun_sets_the_annotation_to_now(lua: Runtime, annotations: dict[str, str] | None) -> None:
    obj = service_action(rendered(Phase.FAILED, "boom"))
    if annotations is not None:
        obj["metadata"]["annotations"] = dict(annotations)
    before = datetime.now(UTC).replace(microsecond=0)
    result = lua.action(RERUN, obj)
    after = datetime.now(UTC)

    assert before - timedelta(seconds=1) <= _stamp_of(result) <= after
    if annotations is not None:
        assert result["metadata"]["annotations"]["team"] == "data"
    # Nothing but the annotation changes.
    assert result["spec"] == obj["spec"]
    assert result["status"] == obj["status"]
    assert {k: v for k, v in result["metadata"].items() if k != "annotations"} == {
        k: v for k, v in obj["metadata"].items() if k != "annotations"
    }


# The rerun action as first shipped: os.date with "!" and an explicit time.
OLD_RERUN = """
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["emrops.io/run-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time())
return obj
"""


@pytest.mark.integration
@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/Los_Angeles", "UTC"])
def test_rerun_stamp_is_utc_whatever_the_servers_time_zone(harness: Harness, tz: str) -> None:
    obj = service_action(rendered(Phase.SUCCEEDED, "done"))
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = _stamp_of(harness.action(RERUN, obj, env={"TZ": tz}))
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)


@pytest.mark.integration
def test_old_rerun_wrote_local_time_with_a_z(harness: Harness, tmp_path: Any) -> None:
    # Argo CD's os.date drops "!" when given a time, so on an argocd-server in UTC+8 the old script
    # wrote a time eight hours ahead, marked Z. (The harness reproduces Argo CD's os.date.)
    old = tmp_path / "action.lua"
    old.write_text(OLD_RERUN)
    obj = service_action(rendered(Phase.SUCCEEDED, "done"))
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = _stamp_of(harness.action(old, obj, env={"TZ": "Asia/Shanghai"}))
    offset = stamp - before
    assert timedelta(hours=8) - timedelta(seconds=1) <= offset <= timedelta(hours=8, seconds=5)


# --- the environment itself --------------------------------------------------------------------

_PROBE = """
local function keys(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  return names
end
return {globals = keys(_G), table = keys(table), os = keys(require("os"))}
"""


def test_argo_cd_has_no_string_math_or_global_os(lua: Runtime) -> None:
    env = lua.eval(_PROBE)
    for absent in ("string", "math", "io", "os", "debug", "coroutine"):
        assert absent not in env["globals"]
    assert env["os"] == ["date", "time"]
    assert env["table"] == ["concat", "getn", "insert", "maxn", "remove", "sort"]
    for script in ('return ("x"):upper()', "return string.format('%d', 1)", "return math.floor(1.5)"):
        with pytest.raises(LuaError):
            lua.eval(script)


@pytest.mark.integration
def test_lupa_environment_matches_gopher_lua(harness: Harness) -> None:
    # The quick unit runs are only as good as their likeness to gopher-lua's globals.
    real = harness.eval(_PROBE)
    quick = RestrictedLupa().eval(_PROBE)
    gopher_only = {"_GOPHER_LUA_VERSION", "_printregs"}
    assert set(real["globals"]) - gopher_only == set(quick["globals"])
    assert (real["table"], real["os"]) == (quick["table"], quick["os"])


@pytest.mark.integration
def test_harness_reads_results_as_argo_cd_does(harness: Harness) -> None:
    obj = service_action(None)
    # An invalid status is Unknown, not an error; an empty table is an empty health.
    assert harness.run("health", 'return {status = "Fine"}', obj) == {
        "status": "Unknown",
        "message": "Lua returned an invalid health status",
    }
    assert harness.run("health", "return {}", obj) == {"status": "", "message": ""}
    # The object reaches Lua with integer fields as numbers, and a runaway script is stopped.
    assert harness.eval("return obj.metadata.generation + 1", obj) == 2
    with pytest.raises(LuaError, match="context deadline exceeded"):
        harness.eval("while true do end", obj)
