"""Three ServiceActions on the same HDFS DataNodes run one at a time, in creation order.

The objects are created while no operator runs, a bit more than a second apart (creation
timestamps have one-second resolution), and named so that name order is the reverse of creation
order: an operator that took them in list (name) order instead of creation order would fail.
The operator then finds all three at once. The later ones must say they are Queued and whom
they wait for, and EMR must never see a ConcurrentModification.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from harness.calls import call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import rolling_datanodes
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

# Creation order: q-3-first, then q-2-second, then q-1-third.
NAMES = ["q-3-first", "q-2-second", "q-1-third"]


def rolling_restart(name: str) -> dict[str, Any]:
    # Four DataNodes, one per batch, 100 s apart: about 1 s apart at --time-scale 0.01.
    return rolling_datanodes(name, interval=100)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_overlapping_actions_run_in_creation_order(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    kube.create_secret()
    for i, name in enumerate(NAMES):
        if i:
            time.sleep(1.1)
        kube.create(rolling_restart(name))
    created = kube.all()
    stamps = [created[n]["metadata"]["creationTimestamp"] for n in NAMES]
    assert stamps == sorted(set(stamps)), f"creation timestamps not distinct and ordered: {stamps}"

    operator_factory()
    queued: dict[str, set[str]] = {n: set() for n in NAMES}
    phases: dict[str, list[str]] = {n: [] for n in NAMES}
    progress: dict[str, list[tuple[int, int]]] = {n: [] for n in NAMES}

    def record(objs: dict[str, dict[str, Any]]) -> bool:
        for name in NAMES:
            st = objs.get(name, {}).get("status") or {}
            if st.get("phase") and (not phases[name] or phases[name][-1] != st["phase"]):
                phases[name].append(st["phase"])
            seen = st.get("progress") or {}
            if seen.get("total") is not None and st.get("phase") == "Running":
                progress[name].append((seen["total"], seen.get("done") or 0))
            if st.get("phase") == "Queued":
                queued[name].update(st.get("waitingFor") or [])
        return all(
            (objs.get(n, {}).get("status") or {}).get("phase") in {"Succeeded", "Failed", "Unknown"}
            for n in NAMES
        )

    final = kube.wait_until("the three rolling restarts", record, timeout=180, interval=0.25)
    for name in NAMES:
        assert final[name]["status"]["phase"] == "Succeeded", summarize(final[name])

    # One at a time, in creation order: each operation started after the previous one ended.
    ops = [final[n]["status"]["operation"] for n in NAMES]
    for i in range(1, len(NAMES)):
        earlier, later, a, b = ops[i - 1], ops[i], NAMES[i - 1], NAMES[i]
        assert ts(earlier["startTime"]) < ts(later["startTime"]), f"{a} must start before {b}: {ops}"
        assert ts(earlier["endTime"]) <= ts(later["startTime"]), f"{b} started while {a} ran: {ops}"
    # The emulator agrees on the order in which it received the accepted calls.
    accepted = [n for c in module_emulator.ok_runs() for n in NAMES if f"[svcact:{n}]" in str(c)]
    assert accepted == NAMES

    # The later ones said they were queued, and behind whom.
    assert "Queued" in phases["q-2-second"], phases
    assert "Queued" in phases["q-1-third"], phases
    # waitingFor names the blockers (plain or namespace/name).
    assert any(w.endswith("q-3-first") for w in queued["q-2-second"]), queued
    assert any(w.endswith(("q-3-first", "q-2-second")) for w in queued["q-1-third"]), queued
    assert not queued["q-3-first"], "the first one waits for nobody"

    # While running, progress counted the four DataNodes, never going backwards.
    for name in NAMES:
        assert progress[name], f"{name}: no progress was shown during a multi-second rolling restart"
        assert {total for total, _ in progress[name]} == {4}, progress[name]
        dones = [done for _, done in progress[name]]
        assert dones == sorted(dones), progress[name]

    # No call was wasted on ConcurrentModification: exactly one call per object.
    outcomes = [call_outcome(c) for c in module_emulator.run_calls()]
    assert "ConcurrentModification" not in outcomes, outcomes
    assert outcomes == ["OK"] * 3
