"""The read APIs: shapes, filters and pagination."""

from __future__ import annotations

from typing import Any

import pytest
from emulator_api import Api

from harness.objects import CLUSTER_ID, REGION


async def test_get_cluster_shape(api: Api) -> None:
    cluster = (await api.call("GetCluster", {"RegionId": REGION, "ClusterId": CLUSTER_ID})).body["Cluster"]
    assert cluster["ClusterName"] == "emrops-demo"
    assert cluster["ClusterType"] == "DATALAKE" and cluster["ClusterState"] == "RUNNING"
    assert isinstance(cluster["CreateTime"], int) and cluster["CreateTime"] > 1_000_000_000_000  # ms


async def test_demo_layout_matches_the_agreed_cluster(api: Api) -> None:
    nodes = (
        await api.call("ListNodes", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "MaxResults": 100})
    ).body["Nodes"]
    assert {(n["NodeName"], n["NodeId"], n["NodeGroupType"]) for n in nodes} == {
        ("master1-1", "i-bp1emrdemo00master1", "MASTER"),
        *{(f"core1-{i}", f"i-bp1emrdemo000core{i}", "CORE") for i in range(1, 5)},
        ("task1-1", "i-bp1emrdemo000task1", "TASK"),
        ("task1-2", "i-bp1emrdemo000task2", "TASK"),
    }
    reply = await api.call(
        "ListComponentInstances", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "MaxResults": 100}
    )
    layout: dict[tuple[str, str], set[str]] = {}
    for inst in reply.body["ComponentInstances"]:
        layout.setdefault((inst["ApplicationName"], inst["ComponentName"]), set()).add(inst["NodeName"])
        assert inst["ComponentInstanceState"] == "STARTED"
    cores = {f"core1-{i}" for i in range(1, 5)}
    assert layout == {
        ("HDFS", "NameNode"): {"master1-1"},
        ("HDFS", "DataNode"): cores,
        ("YARN", "ResourceManager"): {"master1-1"},
        ("YARN", "NodeManager"): cores | {"task1-1", "task1-2"},
        ("HIVE", "HiveMetastore"): {"master1-1"},
        ("HIVE", "HiveServer2"): {"master1-1"},
        ("SPARK", "SparkHistoryServer"): {"master1-1"},
        ("ZOOKEEPER", "ZooKeeper"): {"master1-1", "core1-1", "core1-2"},
    }


async def test_pagination_walks_every_item_once(api: Api) -> None:
    base = {"RegionId": REGION, "ClusterId": CLUSTER_ID, "MaxResults": 5}
    seen: list[tuple[str, str, str]] = []
    token: str | None = None
    pages = 0
    while True:
        reply = await api.call("ListComponentInstances", {**base, **({"NextToken": token} if token else {})})
        body = reply.body
        assert body["TotalCount"] == 18 and body["MaxResults"] == 5
        seen += [(i["ApplicationName"], i["ComponentName"], i["NodeId"]) for i in body["ComponentInstances"]]
        pages += 1
        token = body.get("NextToken")
        if not token:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 18


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"MaxResults": 0}, "InvalidParameterValue"),
        ({"MaxResults": 101}, "InvalidParameterValue"),
        ({"MaxResults": "ten"}, "InvalidParameter"),
        ({"NextToken": "garbage!"}, "InvalidParameter"),
        ({"ClusterId": ""}, "MissingParameter"),
    ],
)
async def test_paging_errors(api: Api, extra: dict[str, Any], code: str) -> None:
    reply = await api.call("ListNodes", {"RegionId": REGION, "ClusterId": CLUSTER_ID, **extra})
    assert reply.code == code


async def test_filters(api: Api) -> None:
    reply = await api.call(
        "ListComponentInstances",
        {
            "RegionId": REGION,
            "ClusterId": CLUSTER_ID,
            "ApplicationNames": ["HDFS", "ZOOKEEPER"],
            "NodeNames": ["core1-1"],
        },
    )
    assert {(i["ApplicationName"], i["ComponentName"]) for i in reply.body["ComponentInstances"]} == {
        ("HDFS", "DataNode"),
        ("ZOOKEEPER", "ZooKeeper"),
    }
    nodes = await api.call(
        "ListNodes", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "NodeGroupIds": ["ng-emrdemo000task1"]}
    )
    assert [n["NodeName"] for n in nodes.body["Nodes"]] == ["task1-1", "task1-2"]
    clusters = await api.call("ListClusters", {"RegionId": REGION, "ClusterStates": ["TERMINATED"]})
    assert clusters.body["Clusters"] == [] and clusters.body["TotalCount"] == 0
    other_region = await api.call("ListClusters", {"RegionId": "cn-beijing"})
    assert other_region.body["Clusters"] == []


async def test_get_operation_of_another_cluster_is_not_found(api_factory: Any) -> None:
    api = await api_factory({"clusters": [{"generate": {"count": 2, "prefix": "c-x"}}]})
    reply = await api.call(
        "RunApplicationAction",
        {
            "RegionId": REGION,
            "ClusterId": "c-x0001",
            "ActionName": "start",
            "ComponentInstanceSelector": {"RunActionScope": "APPLICATION", "ApplicationName": "HDFS"},
        },
    )
    op_id = reply.body["OperationId"]
    assert (
        await api.call("GetOperation", {"RegionId": REGION, "ClusterId": "c-x0002", "OperationId": op_id})
    ).code == "ResourceNotFound"
    assert (
        await api.call("GetOperation", {"RegionId": REGION, "ClusterId": "c-x0001"})
    ).code == "MissingParameter"
