"""Two operator processes on the same namespace: each run is submitted exactly once.

Both processes see every ServiceAction and both try to start it; only the one whose
resourceVersion-conditioned write of the intent wins may call EMR (docs/concepts.md, exactly once).
"""

from __future__ import annotations

import pytest

from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import INSTANCES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

# One object per component instance of the default cluster: 18 distinct targets.
TARGETS = [(app, comp, node) for (app, comp), nodes in INSTANCES.items() for node in nodes]
OBJECTS = [tagged_action(f"ha-{i:02d}", "restart", instance_scope(*t)) for i, t in enumerate(TARGETS)]
NAMES = [o["metadata"]["name"] for o in OBJECTS]


def test_two_operators_submit_each_run_once(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    kube.create_secret()
    first, second = operator_factory(), operator_factory()
    kube.create(*OBJECTS)
    final = kube.wait_phase(NAMES, timeout=180)

    for name in NAMES:
        obj = final[name]
        assert obj["status"]["phase"] == "Succeeded", summarize(obj)
        ok = module_emulator.ok_runs(name)
        assert len(ok) == 1, f"{name}: {len(ok)} accepted RunApplicationAction calls"
        assert obj["status"]["operationId"] == ok[0]["operation_id"]
    assert len(module_emulator.ok_runs()) == len(NAMES)

    # Both processes lived through it (a crash of one would make this a one-operator test).
    assert first.running and second.running
