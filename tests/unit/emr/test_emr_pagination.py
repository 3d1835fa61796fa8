"""NextToken pagination of the read APIs."""

from __future__ import annotations

import pytest
from emr_helpers import Recorder, ok, params_of

from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.errors import ApiError, ResponseError
from emrops.emr.models import ListClustersRequest, ListComponentInstancesRequest, ListNodesRequest

_params = params_of


async def test_iter_nodes_follows_next_token(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.reply(
        ok({"Nodes": [{"NodeId": "i-1"}, {"NodeId": "i-2"}], "NextToken": "t-2", "TotalCount": 5}),
        ok({"Nodes": [{"NodeId": "i-3"}, {"NodeId": "i-4"}], "NextToken": "t-3", "TotalCount": 5}),
        ok({"Nodes": [{"NodeId": "i-5"}], "NextToken": "", "TotalCount": 5}),
    )
    request = ListNodesRequest(
        region_id="cn-hangzhou", cluster_id="c-1", max_results=2, node_ids=["i-1", "i-5"]
    )
    ids = [node.node_id async for node in client.iter_nodes(request, credentials=creds)]
    assert ids == ["i-1", "i-2", "i-3", "i-4", "i-5"]
    sent = [_params(r) for r in recorder.requests]
    assert [p.get("NextToken") for p in sent] == [None, "t-2", "t-3"]
    for params in sent:
        assert params["MaxResults"] == "2"
        assert (params["NodeIds.1"], params["NodeIds.2"]) == ("i-1", "i-5")
        assert params["ClusterId"] == "c-1"


async def test_iter_component_instances_stops_without_token(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    instance = {"ApplicationName": "HDFS", "ComponentName": "DataNode", "NodeId": "i-1"}
    recorder.reply(ok({"ComponentInstances": [instance]}))
    request = ListComponentInstancesRequest(region_id="cn-hangzhou", cluster_id="c-1")
    found = [i async for i in client.iter_component_instances(request, credentials=creds)]
    assert [(i.application_name, i.component_name, i.node_id) for i in found] == [("HDFS", "DataNode", "i-1")]
    assert len(recorder.requests) == 1


async def test_iter_clusters_starts_at_given_token(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.reply(ok({"Clusters": [{"ClusterId": "c-2"}]}))
    request = ListClustersRequest(region_id="cn-hangzhou", next_token="t-9")
    found = [c.cluster_id async for c in client.iter_clusters(request, credentials=creds)]
    assert found == ["c-2"]
    assert _params(recorder.last)["NextToken"] == "t-9"


async def test_repeated_token_stops_with_an_error(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.default = ok({"Nodes": [{"NodeId": "i-1"}], "NextToken": "same"})
    request = ListNodesRequest(region_id="cn-hangzhou", cluster_id="c-1")
    with pytest.raises(ResponseError, match="repeated"):
        async for _ in client.iter_nodes(request, credentials=creds):
            pass
    assert len(recorder.requests) == 2


async def test_error_on_a_later_page_propagates(
    client: EmrClient, recorder: Recorder, creds: StaticCredentials
) -> None:
    recorder.reply(
        ok({"Nodes": [{"NodeId": "i-1"}], "NextToken": "t-2"}),
        ok({"Code": "Throttling.User", "Message": "slow"}, status=400),
    )
    seen = []
    with pytest.raises(ApiError) as info:
        async for node in client.iter_nodes(
            ListNodesRequest(region_id="cn-hangzhou", cluster_id="c-1"), credentials=creds
        ):
            seen.append(node.node_id)
    assert seen == ["i-1"]
    assert info.value.code == "Throttling.User"
