"""The two invariants every fault test ends with: zero lost runs, zero duplicate submissions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from harness.calls import RUN_ACTION, accepted, accepted_by_description, call_action
from harness.kube import Kube
from harness.status import TERMINAL_PHASES, condition


def assert_no_lost_runs(kube: Kube, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every object reached Succeeded/Failed, or Unknown with a reason a human can act on."""
    objects = kube.all()
    problems = []
    for name in names:
        status = (objects.get(name) or {}).get("status") or {}
        phase = status.get("phase")
        if phase not in TERMINAL_PHASES:
            problems.append(f"{name}: phase {phase!r} is not terminal")
        elif phase in ("Unknown", "Failed"):
            stalled = condition(objects[name], "Stalled")
            if not status.get("message") or stalled.get("status") != "True" or not stalled.get("reason"):
                problems.append(
                    f"{name}: {phase} without a message and a Stalled reason: {json.dumps(status)}"
                )
    assert not problems, problems
    return objects


def assert_no_duplicates(
    calls: Iterable[dict[str, Any]], objects: dict[str, dict[str, Any]]
) -> dict[str, int]:
    """At most one RunApplicationAction EMR performed per object; Succeeded ones exactly one,
    and the operationId in status is the one EMR returned for that object."""
    calls = list(calls)
    applied = accepted_by_description(calls)
    duplicates = {name: n for name, n in applied.items() if n > 1}
    assert not duplicates, f"duplicate submissions: {duplicates}"
    op_of = {
        str((c.get("params") or {}).get("Description")): c["operation_id"]
        for c in calls
        if call_action(c) == RUN_ACTION and accepted(c)
    }
    for name, obj in objects.items():
        status = obj.get("status") or {}
        if status.get("phase") == "Succeeded":
            assert applied.get(name) == 1, f"{name} Succeeded without exactly one submission"
            assert status.get("operationId") == op_of.get(name), (
                name,
                status.get("operationId"),
                op_of.get(name),
            )
    return applied
