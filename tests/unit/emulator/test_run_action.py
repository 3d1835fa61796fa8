"""RunApplicationAction: every validation failure answers with the seed's code, then the happy path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from emulator_api import Api, restart_params

from emrops.acs.codes import TABLE
from harness.objects import CLUSTER_ID, REGION

SEL = "ComponentInstanceSelector"


def without(key: str) -> dict[str, Any]:
    params = restart_params()
    del params[key]
    return params


def selector(**fields: Any) -> dict[str, Any]:
    return restart_params(ComponentInstanceSelector=fields)


INSTANCE = {"ApplicationName": "HDFS", "ComponentName": "DataNode", "NodeId": "i-bp1emrdemo000core1"}

# (case id, params, expected code, text the message must contain)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-region", without("RegionId"), "MissingParameter", "RegionId"),
    ("no-cluster", without("ClusterId"), "MissingParameter", "ClusterId"),
    ("no-action", without("ActionName"), "MissingParameter", "ActionName"),
    ("no-selector", without(SEL), "MissingParameter", SEL),
    ("empty-region", restart_params(RegionId=""), "MissingParameter", "RegionId"),
    ("bad-action", restart_params(ActionName="explode"), "InvalidParameterValue", "ActionName"),
    ("bad-strategy", restart_params(ExecuteStrategy="YOLO"), "InvalidParameterValue", "ExecuteStrategy"),
    (
        "negative-interval",
        restart_params(RollingExecute=True, Interval=-1),
        "InvalidParameterValue",
        "Interval",
    ),
    ("zero-batch", restart_params(RollingExecute=True, BatchSize=0), "InvalidParameterValue", "BatchSize"),
    ("batch-not-int", restart_params(RollingExecute=True, BatchSize="two"), "InvalidParameter", "BatchSize"),
    ("rolling-not-bool", restart_params(RollingExecute="maybe"), "InvalidParameter", "RollingExecute"),
    ("no-scope", selector(ApplicationName="HDFS"), "MissingParameter", "RunActionScope"),
    ("bad-scope", selector(RunActionScope="CLUSTER_ID"), "InvalidParameter.InvalidRunActionScope", ""),
    ("app-no-name", selector(RunActionScope="APPLICATION"), "MissingParameter.ApplicationName", ""),
    ("comp-none", selector(RunActionScope="COMPONENT"), "MissingParameter.ComponentName", ""),
    (
        "comp-no-app",
        selector(RunActionScope="COMPONENT", Components=[{"ComponentName": "DataNode"}]),
        "MissingParameter.ApplicationName",
        "",
    ),
    (
        "comp-no-name",
        selector(RunActionScope="COMPONENT", Components=[{"ApplicationName": "HDFS"}]),
        "MissingParameter.ComponentName",
        "",
    ),
    ("inst-none", selector(RunActionScope="COMPONENT_INSTANCE"), "MissingParameter.ComponentInstance", ""),
    (
        "inst-no-node",
        selector(
            RunActionScope="COMPONENT_INSTANCE",
            ComponentInstances=[{"ApplicationName": "HDFS", "ComponentName": "DataNode"}],
        ),
        "MissingParameter.NodeId",
        "",
    ),
    (
        "inst-no-comp",
        selector(
            RunActionScope="COMPONENT_INSTANCE",
            ComponentInstances=[{"ApplicationName": "HDFS", "NodeId": "i-bp1emrdemo000core1"}],
        ),
        "MissingParameter.ComponentName",
        "",
    ),
    (
        "components-with-instance-scope",
        selector(
            RunActionScope="COMPONENT_INSTANCE",
            ComponentInstances=[INSTANCE],
            Components=[{"ApplicationName": "HDFS", "ComponentName": "DataNode"}],
        ),
        "ConflictParameters",
        "Components",
    ),
    (
        "instances-with-app-scope",
        selector(RunActionScope="APPLICATION", ApplicationName="HDFS", ComponentInstances=[INSTANCE]),
        "ConflictParameters",
        "ComponentInstances",
    ),
    ("batch-without-rolling", restart_params(BatchSize=2), "ConflictParameters", "BatchSize"),
    (
        "interval-without-rolling",
        restart_params(RollingExecute=False, Interval=5),
        "ConflictParameters",
        "Interval",
    ),
    (
        "unknown-cluster",
        restart_params(ClusterId="c-0000000000000000"),
        "ResourceNotFound",
        "c-0000000000000000",
    ),
    ("other-region", restart_params(RegionId="cn-beijing"), "ResourceNotFound", CLUSTER_ID),
    (
        "unknown-app",
        selector(RunActionScope="APPLICATION", ApplicationName="KAFKA"),
        "ResourceNotFound",
        "KAFKA",
    ),
    (
        "unknown-component",
        selector(
            RunActionScope="COMPONENT", Components=[{"ApplicationName": "HDFS", "ComponentName": "Journal"}]
        ),
        "ResourceNotFound",
        "Journal",
    ),
    (
        "unknown-node",
        selector(RunActionScope="COMPONENT_INSTANCE", ComponentInstances=[{**INSTANCE, "NodeId": "i-nope"}]),
        "ResourceNotFound",
        "i-nope",
    ),
    (
        "instance-not-on-node",
        selector(
            RunActionScope="COMPONENT_INSTANCE",
            ComponentInstances=[{**INSTANCE, "NodeId": "i-bp1emrdemo000task1"}],
        ),
        "ResourceNotFound",
        "i-bp1emrdemo000task1",
    ),
    ("shape-conflict", {**restart_params(), "ComponentInstanceSelector": "flat"}, "InvalidParameter", SEL),
]


@pytest.mark.parametrize(("params", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_validation_failures(api: Api, params: dict[str, Any], code: str, text: str) -> None:
    reply = await api.call("RunApplicationAction", params)
    assert reply.code == code, reply.body
    assert reply.status == TABLE[code].http_status
    assert text in reply.body["Message"]
    assert "%s" not in reply.body["Message"]
    assert api.state.world.operations == {}


async def test_mixed_flat_and_nested_keys_are_invalid_parameter(api: Api) -> None:
    query = "RegionId=cn-hangzhou&ClusterId=c-8a3f2e1d9b7c6a50&ActionName=start&A=1&A.B=2"
    reply = await api.send("POST", query, {})  # unsigned: the parse error wins, nothing reaches auth
    assert reply.code in {"InvalidParameter", "IncompleteSignature"}
    signed = await api.call("RunApplicationAction", {**restart_params(), "X": {"1": "a"}, "X.1.Y": "b"})
    assert signed.code == "InvalidParameter"


async def test_success_returns_operation_and_abnormal_instances(api_factory: Any) -> None:
    api = await api_factory(
        {
            "clusters": [
                {
                    "id": CLUSTER_ID,
                    "node_groups": [
                        {"type": "MASTER", "nodes": [{"id": "i-m", "name": "master1-1"}]},
                        {
                            "type": "CORE",
                            "nodes": [
                                {"id": "i-c1", "name": "core1-1"},
                                {"id": "i-c2", "name": "core1-2", "abnormal": True},
                            ],
                        },
                    ],
                    "applications": {"HDFS": {"NameNode": ["MASTER"], "DataNode": ["CORE"]}},
                }
            ]
        }
    )
    reply = await api.call(
        "RunApplicationAction", restart_params(RollingExecute="true", BatchSize=1, Interval=0)
    )
    assert reply.status == 200, reply.body
    assert reply.body["OperationId"].startswith("op-") and len(reply.body["OperationId"]) == 19
    assert reply.body["AbnInstances"] == [{"NodeId": "i-c2", "NodeName": "core1-2"}]
    assert api.state.calls[-1].operation_id == reply.body["OperationId"]


@pytest.mark.parametrize("flag", ["true", "True", "TRUE", "tRuE"])
async def test_booleans_are_case_insensitive(api: Api, flag: str) -> None:
    reply = await api.call(
        "RunApplicationAction", {**restart_params(), "RollingExecute": flag, "BatchSize": " 2 "}
    )
    assert reply.status == 200, reply.body
    op = api.state.world.operations[reply.body["OperationId"]]
    assert op.rolling and op.batch_size == 2


async def test_not_authorized_for_another_cluster(api_factory: Any) -> None:
    api = await api_factory({"access_keys": [{"id": "team-b", "secret": "b", "clusters": ["c-other"]}]})
    reply = await api.call("RunApplicationAction", restart_params(), key="team-b", secret="b")
    assert (reply.status, reply.code) == (400, "NotAuthorized")
    assert "team-b" in reply.body["Message"] and 'b"' not in reply.body["Message"]
    reply = await api.call(
        "GetCluster", {"RegionId": REGION, "ClusterId": CLUSTER_ID}, key="team-b", secret="b"
    )
    assert reply.code == "NotAuthorized"
    listed = await api.call("ListClusters", {"RegionId": REGION}, key="team-b", secret="b")
    assert listed.body["Clusters"] == []


async def test_concurrent_modification_on_overlapping_instances(api_factory: Any) -> None:
    api = await api_factory(time_scale=1.0)  # 2 s steps: the first operation is still running
    first = await api.call("RunApplicationAction", restart_params())
    assert first.status == 200
    dn = {"ApplicationName": "HDFS", "ComponentName": "DataNode", "NodeId": "i-bp1emrdemo000core3"}
    overlap = await api.call(
        "RunApplicationAction", selector(RunActionScope="COMPONENT_INSTANCE", ComponentInstances=[dn])
    )
    assert (overlap.status, overlap.code) == (400, "ConcurrentModification")
    assert "i-bp1emrdemo000core3" in overlap.body["Message"]
    other = await api.call(
        "RunApplicationAction", selector(RunActionScope="APPLICATION", ApplicationName="YARN")
    )
    assert other.status == 200, "a disjoint set of instances may run at the same time"


async def test_throttling_with_retry_after(api_factory: Any) -> None:
    api = await api_factory({"rate_limit": {"qps": 1, "burst": 2}}, time_scale=1.0)
    statuses = [(await api.call("ListClusters", {"RegionId": REGION})) for _ in range(3)]
    assert [r.status for r in statuses[:2]] == [200, 200]
    throttled = statuses[2]
    assert (throttled.status, throttled.code) == (400, "ThrottlingException")
    retry_after = int(throttled.headers["x-acs-retry-after"])
    assert 0 < retry_after <= 1000
    await asyncio.sleep(retry_after / 1000 + 0.05)
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200


async def test_throttling_is_per_key_and_time_scaled(api_factory: Any) -> None:
    api = await api_factory(
        {
            "access_keys": [
                {"id": "slow", "secret": "s", "rate_limit": {"qps": 1, "burst": 1, "code": "Throttling.User"}}
            ]
        },
        time_scale=10.0,
    )
    assert (await api.call("ListClusters", {"RegionId": REGION}, key="slow", secret="s")).status == 200
    throttled = await api.call("ListClusters", {"RegionId": REGION}, key="slow", secret="s")
    assert throttled.code == "Throttling.User"
    assert int(throttled.headers["x-acs-retry-after"]) > 5000  # one emulated second is ten real ones
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200  # the demo key is untouched
