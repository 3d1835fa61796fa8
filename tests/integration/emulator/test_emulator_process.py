"""The emulator as a process (``emrops emulator``), driven by the official SDK: rolling execution
measured from the emulator's own per-batch timestamps, strategies, faults and the fixture handle."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import pytest
from alibabacloud_emr20210320 import models as m
from alibabacloud_emr20210320.client import Client
from alibabacloud_tea_openapi.models import Config

from harness.emulator import Emulator
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, REGION

pytestmark = pytest.mark.integration

SCALE = 0.05  # a 2 s step takes 100 ms, a 3 s interval 150 ms
NODE_MANAGERS = m.ComponentInstanceSelector(
    run_action_scope="COMPONENT",
    components=[m.ComponentInstanceSelectorComponents(application_name="YARN", component_name="NodeManager")],
)


def sdk(emulator: Emulator) -> Client:
    return Client(
        Config(
            access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            endpoint=emulator.endpoint,
            protocol="http",
            region_id=REGION,
        )
    )


def restart_node_managers(client: Client, **options: Any) -> str:
    response = client.run_application_action(
        m.RunApplicationActionRequest(
            region_id=REGION,
            cluster_id=CLUSTER_ID,
            action_name="restart",
            component_instance_selector=NODE_MANAGERS,
            rolling_execute=True,
            batch_size=2,
            interval=3,
            **options,
        )
    )
    return str(response.body.operation_id)


def wait_finished(client: Client, operation_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        op = client.get_operation(
            m.GetOperationRequest(region_id=REGION, cluster_id=CLUSTER_ID, operation_id=operation_id)
        ).body.operation
        if op.operation_state != "IN_PROGRESS":
            return op
        time.sleep(0.05)
    raise AssertionError(f"operation {operation_id} still running after {timeout}s")


def operation_state(emulator: Emulator, operation_id: str) -> dict[str, Any]:
    return next(op for op in emulator.state()["operations"] if op["OperationId"] == operation_id)


def instance_states(emulator: Emulator) -> dict[str, str]:
    cluster = next(c for c in emulator.state()["clusters"] if c["ClusterId"] == CLUSTER_ID)
    return {
        f"{i['ComponentName']}@{i['NodeName']}": i["ComponentInstanceState"]
        for i in cluster["ComponentInstances"]
    }


@pytest.mark.parametrize("emulator", [{"time_scale": SCALE}], indirect=True)
def test_rolling_restart_runs_three_batches_in_order_at_the_interval(emulator: Emulator) -> None:
    client = sdk(emulator)
    operation_id = restart_node_managers(client)
    op = wait_finished(client, operation_id)
    assert op.operation_state == "COMPLETED" and op.end_time >= op.start_time

    batches = operation_state(emulator, operation_id)["Batches"]
    assert [[i["NodeId"] for i in b["Instances"]] for b in batches] == [
        ["i-bp1emrdemo000core1", "i-bp1emrdemo000core2"],
        ["i-bp1emrdemo000core3", "i-bp1emrdemo000core4"],
        ["i-bp1emrdemo000task1", "i-bp1emrdemo000task2"],
    ]
    starts = [b["Start"] for b in batches]
    ends = [b["End"] for b in batches]
    assert starts == sorted(starts) and all(s < e for s, e in zip(starts, ends, strict=True))
    # Each batch starts only after the previous one ended plus the (scaled) interval ...
    gaps = [nxt - end for end, nxt in zip(ends, starts[1:], strict=False)]
    assert all(gap >= 3 * SCALE * 0.9 for gap in gaps), gaps
    # ... and the batches are evenly spaced (tolerant: a loaded machine stretches any one of them).
    spacing = [b - a for a, b in pairwise(starts)]
    assert 1 / 3 < spacing[0] / spacing[1] < 3, spacing
    # A restart takes three steps (STOPPING, STOPPED, STARTING), so a batch lasts about twice the interval.
    durations = [e - s for s, e in zip(starts, ends, strict=True)]
    assert all(d >= 3 * 2.0 * SCALE * 0.9 for d in durations), durations
    assert set(instance_states(emulator).values()) == {"STARTED"}
    [call] = emulator.calls("RunApplicationAction")
    assert call["outcome"] == "OK" and call["operation_id"] == operation_id
    assert call["params"]["BatchSize"] == "2" and "Signature" not in call["params"]


@pytest.mark.parametrize("emulator", [{"time_scale": 0.01}], indirect=True)
def test_failed_block_and_failed_continue_differ_on_an_abnormal_node(emulator: Emulator) -> None:
    client = sdk(emulator)
    emulator.set_node("core1-3", abnormal=True, cluster_id=CLUSTER_ID)
    blocked = restart_node_managers(client, execute_strategy="FAILED_BLOCK")
    op = wait_finished(client, blocked)
    assert op.operation_state == "FAILED" and op.state_change_reason.code == "NodeFailure"
    assert "core1-3" in op.state_change_reason.message
    assert [b["Start"] is not None for b in operation_state(emulator, blocked)["Batches"]] == [
        True,
        True,
        False,
    ]
    states = instance_states(emulator)
    assert states["NodeManager@core1-3"] == "STOP_FAILED" and states["NodeManager@task1-1"] == "STARTED"

    emulator.reset()
    assert emulator.calls() == [] and emulator.state()["operations"] == []
    emulator.set_node("core1-3", abnormal=True, cluster_id=CLUSTER_ID)
    continued = restart_node_managers(client, execute_strategy="FAILED_CONTINUE")
    op = wait_finished(client, continued)
    assert op.operation_state == "FAILED" and "core1-3" in op.state_change_reason.message
    batches = operation_state(emulator, continued)["Batches"]
    assert all(b["End"] is not None for b in batches)
    assert [len(b["Failed"]) for b in batches] == [0, 1, 0]


def test_faults_through_the_handle(emulator: Emulator) -> None:
    client = sdk(emulator)
    emulator.faults({"action": "RunApplicationAction", "drop_after_apply": True, "count": 1})
    with pytest.raises(Exception):  # the SDK sees a reset connection, not an API error
        restart_node_managers(client)
    [op] = emulator.state()["operations"]
    [call] = emulator.calls("RunApplicationAction")
    assert call["dropped"] and call["operation_id"] == op["OperationId"]
    emulator.faults([{"action": "ListClusters", "code": "ServiceUnavailable", "count": 1}])
    with pytest.raises(Exception) as caught:
        client.list_clusters(m.ListClustersRequest(region_id=REGION))
    assert getattr(caught.value, "code", None) == "ServiceUnavailable"
    assert client.list_clusters(m.ListClustersRequest(region_id=REGION)).status_code == 200


def test_scenario_and_extra_keys_from_the_command_line(emulator_factory: Any) -> None:
    emulator = emulator_factory(
        scenario={"clusters": [{"generate": {"count": 3, "prefix": "c-cli"}}]},
        access_keys=["cli-key:cli-secret"],
    )
    client = Client(
        Config(
            access_key_id="cli-key",
            access_key_secret="cli-secret",
            endpoint=emulator.endpoint,
            protocol="http",
            region_id=REGION,
        )
    )
    clusters = client.list_clusters(m.ListClustersRequest(region_id=REGION)).body.clusters
    assert [c.cluster_id for c in clusters] == ["c-cli0001", "c-cli0002", "c-cli0003"]
