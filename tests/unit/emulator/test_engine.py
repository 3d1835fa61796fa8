"""The operation engine: rolling batches, strategies, abnormal nodes, HUMAN_PROCESSING, progress."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

from emulator_api import Api, restart_params

from harness.objects import CLUSTER_ID, REGION

NM = {
    "RunActionScope": "COMPONENT",
    "Components": [{"ApplicationName": "YARN", "ComponentName": "NodeManager"}],
}


async def wait_done(api: Api, op_id: str, limit: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(limit):
        while True:
            reply = await api.call(
                "GetOperation", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "OperationId": op_id}
            )
            assert reply.status == 200, reply.body
            if reply.body["Operation"]["OperationState"] != "IN_PROGRESS":
                return dict(reply.body["Operation"])
            await asyncio.sleep(0.01)


async def run(api: Api, **params: Any) -> str:
    reply = await api.call("RunApplicationAction", restart_params(**params))
    assert reply.status == 200, reply.body
    return str(reply.body["OperationId"])


def states(api: Api) -> dict[str, str]:
    cluster = api.state.world.clusters[CLUSTER_ID]
    return {f"{i.component}@{i.node.name}": i.state.value for i in cluster.instances.values()}


async def test_rolling_batches_run_in_order_with_the_interval_between(api_factory: Any) -> None:
    scale = 0.02
    api = await api_factory(time_scale=scale)
    op_id = await run(api, ComponentInstanceSelector=NM, RollingExecute=True, BatchSize=2, Interval=3)
    op = await wait_done(api, op_id)
    assert op["OperationState"] == "COMPLETED"
    assert op["EndTime"] >= op["StartTime"]
    batches = api.state.world.operations[op_id].batches
    assert [[k[2] for k in b.keys] for b in batches] == [
        ["i-bp1emrdemo000core1", "i-bp1emrdemo000core2"],
        ["i-bp1emrdemo000core3", "i-bp1emrdemo000core4"],
        ["i-bp1emrdemo000task1", "i-bp1emrdemo000task2"],
    ]
    for before, after in pairwise(batches):
        assert before.end is not None and after.start is not None
        assert after.start - before.end >= 3 * scale * 0.9
    assert set(states(api).values()) == {"STARTED"}


async def test_without_rolling_everything_is_one_batch(api: Api) -> None:
    op_id = await run(api, ComponentInstanceSelector=NM)
    await wait_done(api, op_id)
    assert len(api.state.world.operations[op_id].batches) == 1


async def test_restart_moves_through_stop_and_start_states(api_factory: Any) -> None:
    api = await api_factory(time_scale=0.05)  # 100 ms per step
    op_id = await run(api, ComponentInstanceSelector=NM)
    seen: list[str] = []
    maintenance = False
    while api.state.world.operations[op_id].state.value == "IN_PROGRESS":
        reply = await api.call(
            "ListComponentInstances",
            {
                "RegionId": REGION,
                "ClusterId": CLUSTER_ID,
                "ComponentNames": ["NodeManager"],
                "NodeIds": ["i-bp1emrdemo000core1"],
            },
        )
        state = reply.body["ComponentInstances"][0]["ComponentInstanceState"]
        if not seen or seen[-1] != state:
            seen.append(state)
        nodes = await api.call(
            "ListNodes", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "NodeIds": ["i-bp1emrdemo000core1"]}
        )
        maintenance = maintenance or nodes.body["Nodes"][0]["MaintenanceStatus"] == "ON"
        await asyncio.sleep(0.02)
    assert seen[:3] == ["STOPPING", "STOPPED", "STARTING"], seen
    assert states(api)["NodeManager@core1-1"] == "STARTED"
    assert maintenance


ABNORMAL = {
    "clusters": [
        {
            "id": CLUSTER_ID,
            "abnormal_nodes": ["core1-3"],
            "node_groups": [
                {"type": "CORE", "nodes": [{"id": f"i-c{n}", "name": f"core1-{n}"} for n in range(1, 7)]}
            ],
            "applications": {"HDFS": {"DataNode": ["CORE"]}},
        }
    ]
}


async def test_failed_block_stops_at_the_first_failed_batch(api_factory: Any) -> None:
    api = await api_factory(ABNORMAL)
    op_id = await run(api, RollingExecute=True, BatchSize=2, ExecuteStrategy="FAILED_BLOCK")
    op = await wait_done(api, op_id)
    assert op["OperationState"] == "FAILED"
    assert op["StateChangeReason"]["Code"] == "NodeFailure"
    assert "core1-3" in op["StateChangeReason"]["Message"]
    batches = api.state.world.operations[op_id].batches
    assert [b.start is not None for b in batches] == [True, True, False]
    got = states(api)
    assert got["DataNode@core1-3"] == "STOP_FAILED"
    assert got["DataNode@core1-4"] == "STARTED"  # same batch, healthy: it restarted
    assert got["DataNode@core1-5"] == "STARTED"  # never touched


async def test_failed_continue_runs_every_batch_and_ends_failed(api_factory: Any) -> None:
    api = await api_factory(ABNORMAL)
    op_id = await run(
        api, RollingExecute=True, BatchSize=2, ExecuteStrategy="FAILED_CONTINUE", ActionName="start"
    )
    op = await wait_done(api, op_id)
    assert op["OperationState"] == "FAILED"
    assert "core1-3" in op["StateChangeReason"]["Message"]
    batches = api.state.world.operations[op_id].batches
    assert all(b.end is not None for b in batches)
    assert states(api)["DataNode@core1-3"] == "START_FAILED"


async def test_stop_then_config_keeps_state(api: Api) -> None:
    op_id = await run(api, ActionName="stop")
    await wait_done(api, op_id)
    assert states(api)["DataNode@core1-1"] == "STOPPED"
    assert (
        api.state.world.clusters[CLUSTER_ID]
        .instances[("HDFS", "DataNode", "i-bp1emrdemo000core1")]
        .desired_state.value
        == "STOPPED"
    )
    op_id = await run(api, ActionName="refresh_queues")
    assert (await wait_done(api, op_id))["OperationState"] == "COMPLETED"
    assert states(api)["DataNode@core1-1"] == "STOPPED"


async def test_human_processing_modes(api_factory: Any) -> None:
    always = await api_factory({"clusters": [{**_small(), "human_processing": "always"}]})
    op = await wait_done(always, await run(always))
    assert op["OperationState"] == "HUMAN_PROCESSING"
    assert "EndTime" not in op
    on_failure = await api_factory(
        {"clusters": [{**_small(), "human_processing": "on_failure", "abnormal_nodes": ["core1-1"]}]}
    )
    op = await wait_done(on_failure, await run(on_failure))
    assert op["OperationState"] == "HUMAN_PROCESSING"
    assert op["StateChangeReason"]["Code"] == "NodeFailure"
    healthy = await api_factory({"clusters": [{**_small(), "human_processing": "on_failure"}]})
    assert (await wait_done(healthy, await run(healthy)))["OperationState"] == "COMPLETED"


def _small() -> dict[str, Any]:
    return {
        "id": CLUSTER_ID,
        "node_groups": [{"type": "CORE", "nodes": 2}],
        "applications": {"HDFS": {"DataNode": ["CORE"]}},
    }


async def test_abnormal_node_marked_at_runtime(api: Api) -> None:
    async with api.client.post(
        "/_emulator/nodes", json={"cluster_id": CLUSTER_ID, "node": "core1-2", "abnormal": True}
    ) as resp:
        assert resp.status == 200
    reply = await api.call("RunApplicationAction", restart_params())
    assert reply.body["AbnInstances"] == [{"NodeId": "i-bp1emrdemo000core2", "NodeName": "core1-2"}]
    assert (await wait_done(api, reply.body["OperationId"]))["OperationState"] == "FAILED"
