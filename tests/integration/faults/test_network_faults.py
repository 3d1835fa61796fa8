"""EMR misbehaving on the wire: latency, connection resets before/after apply, throttling storms.

Zero lost runs and zero duplicate submissions, as in every fault test. A reset after the request
was sent is ambiguous (EMR may have acted; the emulator's ``drop_after_apply`` did act): the object
must end Unknown and never be resubmitted automatically. A read (GetOperation) that fails is
simply retried.
"""

from __future__ import annotations

import pytest
from fault_checks import assert_no_duplicates, assert_no_lost_runs
from test_process_faults import actions, names_of

from fixtures.suites import StartEmulator, StartOperator, count
from harness.emulator import clusters_scenario
from harness.kube import Kube

pytestmark = pytest.mark.integration


def test_connection_resets_and_latency(
    kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator
) -> None:
    emulator = start_emulator(clusters_scenario(10, step_seconds=1))
    start_operator(emulator)
    manifests = actions(5, "net", 10)
    cases = [
        (
            "after-apply",
            {"action": "RunApplicationAction", "drop_after_apply": True, "count": 1},
            {"Unknown"},
        ),
        (
            "before-apply",
            {"action": "RunApplicationAction", "drop_before_apply": True, "count": 1},
            {"Unknown", "Succeeded"},
        ),
        ("poll-reset", {"action": "GetOperation", "drop_after_apply": True, "count": 2}, {"Succeeded"}),
        ("slow-submit", {"action": "RunApplicationAction", "latency": 2.0, "count": 1}, {"Succeeded"}),
        ("slow-poll", {"action": "GetOperation", "latency": 2.0, "count": 2}, {"Succeeded"}),
    ]
    seen: dict[str, str] = {}
    for manifest, (label, fault, expected) in zip(manifests, cases, strict=True):
        emulator.faults({"faults": [fault], "replace": True})
        kube.apply(manifest)
        name = manifest["metadata"]["name"]
        objects = kube.wait_phase([name], timeout=120)
        seen[label] = objects[name]["status"]["phase"]
        assert seen[label] in expected, (label, objects[name]["status"])
    objects = assert_no_lost_runs(kube, names_of(manifests))
    applied = assert_no_duplicates(emulator.calls(), objects)
    after_apply = manifests[0]["metadata"]["name"]
    assert applied.get(after_apply) == 1, "drop_after_apply performed the action exactly once"
    unknown = objects[after_apply]["status"]
    assert not unknown.get("operationId")
    assert unknown.get("lastError", {}).get("code"), unknown


def test_throttling_storm(kube: Kube, start_emulator: StartEmulator, start_operator: StartOperator) -> None:
    """EMR throttles most calls for a while and enforces a low quota throughout."""
    n = count(10, 100)
    scen = clusters_scenario(10, step_seconds=1)
    # 2 requests per real second at time scale 0.01 (the quota refills in emulated time).
    scen["rate_limit"] = {"qps": 0.02, "burst": 2, "code": "Throttling.User"}
    emulator = start_emulator(scen)
    emulator.faults({"action": "*", "code": "Throttling", "probability": 0.5, "count": 3 * n})
    start_operator(emulator)
    manifests = actions(n, "storm", 10)
    kube.apply(*manifests)
    kube.wait_phase(names_of(manifests), timeout=300)
    objects = assert_no_lost_runs(kube, names_of(manifests))
    assert_no_duplicates(emulator.calls(), objects)
    assert all(o["status"]["phase"] == "Succeeded" for o in objects.values()), {
        k: o["status"].get("phase") for k, o in objects.items()
    }
    throttled = [c for c in emulator.calls() if str(c.get("outcome", "")).startswith("Throttling")]
    assert throttled, "the storm throttled nothing; the test did not test anything"
    retried = [o for o in objects.values() if (o["status"].get("attempts") or 0) > 1]
    run_throttled = [c for c in throttled if c.get("action") == "RunApplicationAction"]
    if run_throttled:
        assert retried, "submissions were throttled but no object shows it in status.attempts"
