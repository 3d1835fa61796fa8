"""Our EMR client against the emulator subprocess: every method, STS, and the error paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emrops.acs.codes import Classification
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.errors import ApiError, OutcomeUnknownError
from emrops.emr.models import (
    ActionName,
    ComponentInstanceRef,
    ComponentInstanceSelector,
    GetClusterRequest,
    GetOperationRequest,
    ListClustersRequest,
    ListComponentInstancesRequest,
    ListNodesRequest,
    OperationState,
    RunActionScope,
    RunApplicationActionRequest,
)
from harness.emulator import Emulator
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, CLUSTER_NAME, CORES, REGION

pytestmark = pytest.mark.integration

DEMO = StaticCredentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[EmrClient]:
    async with EmrClient(endpoint=emulator.url) as emr:
        yield emr


def _restart(nodes: list[str], **extra: Any) -> RunApplicationActionRequest:
    return RunApplicationActionRequest(
        region_id=REGION,
        cluster_id=CLUSTER_ID,
        action_name=ActionName.RESTART,
        component_instance_selector=ComponentInstanceSelector(
            run_action_scope=RunActionScope.COMPONENT_INSTANCE,
            application_name="HDFS",
            component_instances=[
                ComponentInstanceRef(application_name="HDFS", component_name="DataNode", node_id=n)
                for n in nodes
            ],
        ),
        **extra,
    )


async def test_read_apis(client: EmrClient) -> None:
    clusters = await client.list_clusters(ListClustersRequest(region_id=REGION), credentials=DEMO)
    assert CLUSTER_ID in [c.cluster_id for c in clusters.clusters]
    assert clusters.request_id
    all_clusters = [
        c async for c in client.iter_clusters(ListClustersRequest(region_id=REGION), credentials=DEMO)
    ]
    assert CLUSTER_ID in [c.cluster_id for c in all_clusters]

    cluster = await client.get_cluster(
        GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID), credentials=DEMO
    )
    assert (cluster.cluster.cluster_name, cluster.cluster.cluster_type) == (CLUSTER_NAME, "DATALAKE")

    nodes_page = await client.list_nodes(
        ListNodesRequest(region_id=REGION, cluster_id=CLUSTER_ID, max_results=2), credentials=DEMO
    )
    assert len(nodes_page.nodes) == 2 and nodes_page.next_token
    nodes = [
        n
        async for n in client.iter_nodes(
            ListNodesRequest(region_id=REGION, cluster_id=CLUSTER_ID, max_results=2),
            credentials=DEMO,
        )
    ]
    assert len(nodes) == 7
    assert {n.node_id for n in nodes if n.node_group_type == "CORE"} == set(CORES)

    filtered = await client.list_nodes(
        ListNodesRequest(region_id=REGION, cluster_id=CLUSTER_ID, node_ids=CORES[:2]),
        credentials=DEMO,
    )
    assert {n.node_id for n in filtered.nodes} == set(CORES[:2])

    datanodes = [
        i
        async for i in client.iter_component_instances(
            ListComponentInstancesRequest(
                region_id=REGION,
                cluster_id=CLUSTER_ID,
                application_names=["HDFS"],
                component_names=["DataNode"],
                max_results=1,
            ),
            credentials=DEMO,
        )
    ]
    assert sorted(i.node_id for i in datanodes) == CORES
    assert {i.component_instance_state for i in datanodes} == {"STARTED"}
    page = await client.list_component_instances(
        ListComponentInstancesRequest(region_id=REGION, cluster_id=CLUSTER_ID), credentials=DEMO
    )
    assert page.component_instances


async def test_run_and_follow_an_operation(client: EmrClient, emulator: Emulator) -> None:
    run = await client.run_application_action(
        _restart(CORES[:2], rolling_execute=True, batch_size=1, interval=1, description="restart *~ 中"),
        credentials=DEMO,
    )
    assert run.operation_id and run.request_id
    assert run.abn_instances == []
    request = GetOperationRequest(region_id=REGION, cluster_id=CLUSTER_ID, operation_id=run.operation_id)
    state = OperationState.IN_PROGRESS
    for _ in range(200):
        response = await client.get_operation(request, credentials=DEMO)
        state = response.operation.operation_state
        if state is not OperationState.IN_PROGRESS:
            break
        await asyncio.sleep(0.05)
    assert state is OperationState.COMPLETED
    recorded = emulator.calls("RunApplicationAction")
    assert len(recorded) == 1


async def test_sts_credentials(emulator_factory: Any) -> None:
    emulator = emulator_factory(access_keys=["stsAK:stsSecret:stsToken"])
    async with EmrClient(endpoint=emulator.url) as client:
        sts = StaticCredentials("stsAK", "stsSecret", security_token="stsToken")
        response = await client.get_cluster(
            GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID), credentials=sts
        )
        assert response.cluster.cluster_id == CLUSTER_ID
        with pytest.raises(ApiError) as info:
            await client.get_cluster(
                GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID),
                credentials=StaticCredentials("stsAK", "stsSecret", security_token="wrongToken"),
            )
        assert info.value.classification is Classification.TERMINAL


async def test_wrong_secret_is_terminal(client: EmrClient) -> None:
    with pytest.raises(ApiError) as info:
        await client.get_cluster(
            GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID),
            credentials=StaticCredentials(ACCESS_KEY_ID, "not-the-secret"),
        )
    error = info.value
    assert error.http_status == 400
    assert error.request_id
    assert error.classification is Classification.TERMINAL
    assert "not-the-secret" not in str(error)


async def test_unknown_cluster_is_resource_not_found(client: EmrClient) -> None:
    with pytest.raises(ApiError) as info:
        await client.get_cluster(GetClusterRequest(region_id=REGION, cluster_id="c-nope"), credentials=DEMO)
    assert (info.value.code, info.value.http_status) == ("ResourceNotFound", 404)


async def test_throttling_carries_retry_after(client: EmrClient, emulator: Emulator) -> None:
    emulator.faults(
        {"action": "GetCluster", "code": "ThrottlingException", "retry_after_ms": 1500, "count": 1}
    )
    request = GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID)
    with pytest.raises(ApiError) as info:
        await client.get_cluster(request, credentials=DEMO)
    assert info.value.code == "ThrottlingException"
    assert info.value.retry_after == pytest.approx(1.5)
    assert info.value.classification is Classification.RETRY
    assert (await client.get_cluster(request, credentials=DEMO)).cluster.cluster_id == CLUSTER_ID


async def test_internal_error_is_ambiguous(client: EmrClient, emulator: Emulator) -> None:
    emulator.faults({"action": "RunApplicationAction", "code": "InternalError", "count": 1})
    with pytest.raises(ApiError) as info:
        await client.run_application_action(_restart(CORES[:1]), credentials=DEMO)
    assert (info.value.code, info.value.http_status) == ("InternalError", 500)
    assert info.value.classification is Classification.AMBIGUOUS


async def test_dropped_connection_after_apply_is_outcome_unknown(
    client: EmrClient, emulator: Emulator
) -> None:
    emulator.faults({"action": "RunApplicationAction", "drop_after_apply": True, "count": 1})
    with pytest.raises(OutcomeUnknownError):
        await client.run_application_action(_restart(CORES[2:3]), credentials=DEMO)
