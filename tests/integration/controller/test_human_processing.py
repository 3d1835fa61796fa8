"""An operation EMR hands to a human (HUMAN_PROCESSING) stalls visibly; a deadline ends it.

The emulator's cluster here ends every operation in HUMAN_PROCESSING, which never resolves on
its own. The run must show Stalled with EMR's reason (not spin, not claim success), and
``activeDeadlineSeconds`` must bound it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emrops.emulator.scenario import DEMO_CLUSTER
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def module_emulator(workdir: Path) -> Iterator[Emulator]:
    scenario = workdir / "human-processing.yaml"
    scenario.write_text(yaml.safe_dump({"clusters": [{**DEMO_CLUSTER, "human_processing": "always"}]}))
    emu = Emulator(workdir, scenario=scenario).start()
    yield emu
    emu.close()


def test_human_processing_is_stalled_and_deadline_fails_it(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    kube.create_secret()
    operator_factory()
    waiting = tagged_action("hp-waiting", "restart", instance_scope("HDFS", "DataNode", CORES[0]))
    bounded = tagged_action(
        "hp-bounded", "restart", instance_scope("HDFS", "DataNode", CORES[1]), activeDeadlineSeconds=8
    )
    kube.create(waiting, bounded)

    def human_processing(objs: dict[str, dict[str, Any]]) -> bool:
        st = objs.get("hp-waiting", {}).get("status") or {}
        return (st.get("operation") or {}).get("state") == "HUMAN_PROCESSING"

    obj = kube.wait_until("HUMAN_PROCESSING to show", human_processing, timeout=90)["hp-waiting"]
    st = obj["status"]
    ok = module_emulator.ok_runs("hp-waiting")
    assert len(ok) == 1
    assert st["operationId"] == ok[0]["operation_id"]
    assert st["phase"] not in ("Succeeded", "Failed"), summarize(obj)
    stalled = condition(obj, "Stalled")
    assert stalled.get("status") == "True", summarize(obj)
    assert condition(obj, "Ready").get("status") == "False"
    # EMR's reason is shown: the emulator's HUMAN_PROCESSING reason code is ServiceFailure.
    reason = module_emulator.operations()[st["operationId"]]["StateChangeReason"]
    assert (st["operation"].get("stateChangeReason") or {}).get("code") == reason["Code"]
    assert reason["Code"] in stalled.get("message", "") or reason["Message"] in stalled.get("message", ""), (
        stalled,
        reason,
    )

    # The deadline ends the other one as Failed, DeadlineExceeded; nothing is submitted again.
    obj = kube.wait_phase(["hp-bounded"], ["Failed"], timeout=90)["hp-bounded"]
    assert condition(obj, "Stalled").get("reason") == "DeadlineExceeded", summarize(obj)
    assert len(module_emulator.ok_runs("hp-bounded")) == 1

    # Still waiting for the human, a while later, with no new call.
    time.sleep(3)
    assert kube.status("hp-waiting")["phase"] not in ("Succeeded", "Failed")
    assert len(module_emulator.run_calls("hp-waiting")) == 1
