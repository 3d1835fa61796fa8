"""The controller under a deterministic simulation: many seeds, each checked at every step.

``test_seeds`` is the search: 1,000 seeds by default (``make test``, ``make simulate``), 100,000
under ``EMROPS_SOAK=1`` (``make soak``), or the ones ``SEEDS``/``SEED`` name. A failing seed is
reported with the invariant, a pasteable ``run_seed(...)`` reproduction and the trace's tail.
The other tests keep the simulation itself honest: reproducible, independent of the process's
string hashing, on a clock that never sleeps, with apiserver semantics that match Kubernetes,
and with checkers that do catch a broken world.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from simulation import seeds
from simulation.apiserver import labels_match, merge_patch, prune, status_schema
from simulation.loop import Deadlock, VirtualLoop
from simulation.world import SeedFailed, run_seed, simulate

pytestmark = pytest.mark.simulation

TESTS = Path(__file__).resolve().parents[1]
#: Failing seeds printed in full (the rest are listed by number).
SHOWN = 3


def _budget() -> float:
    """pytest-timeout for the search: generous, it scales with the number of seeds."""
    count = len(seeds.chosen())
    return max(600.0, count * 1.0 / seeds.workers())


@pytest.mark.timeout(_budget())
def test_seeds() -> None:
    chosen = seeds.chosen()
    outcomes, elapsed = seeds.timed(chosen)
    summary = seeds.summary(outcomes, elapsed)
    print(summary)
    failed = [o for o in outcomes if o.invariant is not None]
    if failed:
        details = "\n\n".join(o.report for o in failed[:SHOWN])
        more = f"\n\n(and {len(failed) - SHOWN} more)" if len(failed) > SHOWN else ""
        replay = "replay one with a full trace: PYTHONPATH=tests .venv/bin/python -m simulation SEED"
        pytest.fail(f"{summary}\n\n{details}{more}\n\n{replay}", pytrace=False)


def test_a_seed_replays_identically() -> None:
    for seed in (3, 17, 256, 1001, 4242):
        first, second = simulate(seed), simulate(seed)
        assert first.digest == second.digest, f"seed {seed} is not reproducible"
        assert first.trace == second.trace


def test_sharing_snapshots_changes_nothing() -> None:
    """Bodies are shared immutable snapshots; handing out deep copies gives the same trace."""
    for seed in (5, 77, 901):
        assert simulate(seed).digest == simulate(seed, paranoid=True).digest


def test_traces_do_not_depend_on_string_hashing() -> None:
    """Set order of strings changes with PYTHONHASHSEED; a trace must not."""
    script = (
        "import json, sys\n"
        "from simulation.world import simulate\n"
        "print(json.dumps([simulate(s).digest for s in (11, 222, 3333)]))\n"
    )
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
        )
        digests.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert digests[0] == digests[1]


def test_virtual_time_runs_far_ahead_of_real_time() -> None:
    began = time.perf_counter()
    results = [simulate(seed) for seed in range(40)]
    elapsed = time.perf_counter() - began
    hours = sum(r.virtual_seconds for r in results) / 3600
    assert hours > 5  # each seed covers many virtual minutes...
    # ...and no real waiting: a loop that slept would run at most as fast as real time. (A ratio,
    # not a time limit: the cost per seed is measured and reported, never asserted.)
    assert hours * 3600 > 100 * elapsed


def test_the_checkers_catch_an_apiserver_without_preconditions() -> None:
    """With resourceVersion preconditions ignored, two replicas both win their intent writes."""
    found = set()
    for seed in range(40):
        result = simulate(
            seed, sabotage="no-preconditions", replicas=2, qps=0.5, burst=1, disruptions=0, fault_rate=0.0
        )
        if result.violation is not None:
            found.add(result.violation.invariant)
    assert "1" in found


def test_the_checkers_catch_a_controller_that_ignores_suspend_and_windows() -> None:
    """Replicas that never see spec.suspend or the window call EMR for gated objects (invariant 11)."""
    found = set()
    for seed in range(40):
        result = simulate(seed, sabotage="ignore-gates", disruptions=0, fault_rate=0.0)
        if result.violation is not None:
            found.add(result.violation.invariant)
            break
    assert found == {"11"}


def test_a_failing_seed_raises_a_pasteable_report() -> None:
    knobs: dict[str, Any] = {"replicas": 2, "qps": 0.5, "burst": 1, "disruptions": 0, "fault_rate": 0.0}
    seed = next(s for s in range(40) if simulate(s, sabotage="no-preconditions", **knobs).violation)
    with pytest.raises(SeedFailed) as failure:
        run_seed(seed, sabotage="no-preconditions", **knobs)
    report = str(failure.value)
    assert f"violated by seed {seed}" in report
    assert f"reproduce: run_seed({seed}, replicas=2, " in report and "qps=0.5" in report
    tail = report.split("last trace lines:\n")[1].splitlines()
    assert 0 < len(tail) <= 30 and any("VIOLATION of invariant" in line for line in tail)


# --- the pieces ------------------------------------------------------------------------------


def test_the_loop_never_sleeps() -> None:
    loop = VirtualLoop()

    async def main() -> float:
        await asyncio.sleep(3600)
        try:
            async with asyncio.timeout(5):
                await asyncio.sleep(10)
        except TimeoutError:
            pass
        return loop.time()

    began = time.perf_counter()
    try:
        assert loop.run_until_complete(main()) == pytest.approx(3605.0)
    finally:
        loop.close()
    assert time.perf_counter() - began < 0.5


def test_the_loop_moves_on_for_tiny_delays() -> None:
    """A delay that rounds to nothing still moves the clock (the rate limiter relies on it)."""
    loop = VirtualLoop(start=1e6)

    async def main() -> None:
        before = loop.time()
        await asyncio.sleep(1e-12)
        assert loop.time() > before

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_a_deadlocked_world_is_reported() -> None:
    loop = VirtualLoop()

    async def main() -> None:
        await loop.create_future()

    try:
        with pytest.raises(Deadlock):
            loop.run_until_complete(main())
    finally:
        loop.close()


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    patched = merge_patch(target, {"a": None, "b": {"c": 9}, "e": [3], "f": {"g": None, "h": 1}})
    assert patched == {"b": {"c": 9, "d": 3}, "e": [3], "f": {"h": 1}}
    assert target == {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}


def test_unknown_status_fields_are_pruned_by_the_crd() -> None:
    status = {"phase": "Running", "noSuchField": 1, "operation": {"state": "IN_PROGRESS", "bogus": 2}}
    assert prune(status, status_schema()) == {"phase": "Running", "operation": {"state": "IN_PROGRESS"}}


def test_label_selectors() -> None:
    assert labels_match(None, {})
    assert labels_match("team=a", {"team": "a"}) and not labels_match("team=a", {"team": "b"})
    assert labels_match("team!=a", {}) and not labels_match("team!=a", {"team": "a"})
    assert labels_match("team", {"team": "x"}) and not labels_match("!team", {"team": "x"})
    assert labels_match("a=b,c!=d", {"a": "b"}) and not labels_match("a=b,c!=d", {"a": "b", "c": "d"})
