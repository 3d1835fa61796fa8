"""Throttling and ConcurrentModification are retried until EMR accepts, and EMR accepts once.

The emulator refuses 70% of RunApplicationAction calls with ThrottlingException, and a share of
the rest with ConcurrentModification. Both prove that EMR did nothing, so the operator must keep
trying (visibly: attempts, lastError) until one call is accepted, and then never call again.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.calls import RUN_ACTION, call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, MASTER, TASKS, app_scope, component_scope, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration

RETRYABLE = {"ThrottlingException", "ConcurrentModification"}

# One object per action, on targets that do not overlap, so the queue does not serialize them.
OBJECTS = [
    tagged_action("r-restart", "restart", instance_scope("HDFS", "DataNode", CORES[0])),
    tagged_action("r-stop", "stop", instance_scope("YARN", "NodeManager", TASKS[0])),
    tagged_action("r-start", "start", instance_scope("YARN", "NodeManager", TASKS[1])),
    tagged_action("r-config", "config", component_scope("HIVE", "HiveMetastore")),
    tagged_action("r-refresh-queues", "refresh_queues", instance_scope("YARN", "ResourceManager", MASTER)),
    tagged_action("r-refresh-labels", "refresh_labels", app_scope("SPARK")),
]
NAMES = [o["metadata"]["name"] for o in OBJECTS]


@pytest.fixture(scope="module")
def observed(kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory) -> dict[str, Any]:
    """Run all objects under the faults; return final objects plus every lastError code seen."""
    module_emulator.faults(
        [
            # Every rule draws on every call and the first code wins: ConcurrentModification on
            # ~30% of the first calls, ThrottlingException on 70%; together ~80% are refused.
            {"action": RUN_ACTION, "code": "ConcurrentModification", "probability": 0.3, "count": 8},
            {"action": RUN_ACTION, "code": "ThrottlingException", "probability": 0.7},
        ]
    )
    kube.create_secret()
    operator_factory()
    kube.create(*OBJECTS)
    seen: dict[str, set[str]] = {n: set() for n in NAMES}

    def done(objs: dict[str, dict[str, Any]]) -> bool:
        for name, obj in objs.items():
            code = ((obj.get("status") or {}).get("lastError") or {}).get("code")
            if code and name in seen:
                seen[name].add(code)
        return all(
            (objs.get(n, {}).get("status") or {}).get("phase") in {"Succeeded", "Failed", "Unknown"}
            for n in NAMES
        )

    final = kube.wait_until("all throttled actions finished", done, timeout=300, interval=0.3)
    return {"final": final, "seen": seen}


@pytest.mark.parametrize("name", NAMES)
def test_succeeds_once_despite_refusals(
    name: str, observed: dict[str, Any], module_emulator: Emulator
) -> None:
    obj = observed["final"][name]
    st = obj["status"]
    assert st["phase"] == "Succeeded", summarize(obj)
    assert condition(obj, "Ready").get("status") == "True"

    calls = module_emulator.run_calls(name)
    ok = [c for c in calls if call_outcome(c) == "OK"]
    assert len(ok) == 1, f"accepted RunApplicationAction calls: {len(ok)} (of {len(calls)})"
    assert calls.index(ok[0]) == len(calls) - 1, "the operator called again after EMR accepted"
    refused = {call_outcome(c) for c in calls[:-1]}
    assert refused <= RETRYABLE, f"unexpected refusals {refused}"
    assert st["operationId"] == ok[0]["operation_id"]

    # Every attempt is visible: the count equals what EMR received.
    assert st.get("attempts") == len(calls), summarize(obj)


def test_retries_were_visible(observed: dict[str, Any], module_emulator: Emulator) -> None:
    """Objects that were refused at least once show it: attempts > 1 and lastError's EMR code."""
    retried = [n for n in NAMES if len(module_emulator.run_calls(n)) > 1]
    assert retried, "the faults refused no call at all: the test proved nothing"
    for name in retried:
        st = observed["final"][name]["status"]
        assert st.get("attempts", 0) > 1
        final_code = (st.get("lastError") or {}).get("code")
        codes = observed["seen"][name] | ({final_code} if final_code else set())
        assert codes & RETRYABLE, f"{name}: no throttling/CM lastError was ever shown ({st})"


def test_every_call_either_refused_or_the_single_accepted_one(module_emulator: Emulator) -> None:
    outcomes = [call_outcome(c) for c in module_emulator.run_calls()]
    assert outcomes.count("OK") == len(NAMES)
    # Both kinds of refusal really happened, and nothing else did.
    assert set(outcomes) == RETRYABLE | {"OK"}, outcomes
