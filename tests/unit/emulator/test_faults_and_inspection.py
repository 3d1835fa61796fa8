"""Fault injection, the call log, state and reset."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from emulator_api import Api, restart_params

from emrops.emulator.faults import FaultBook, parse_fault
from harness.objects import CLUSTER_ID, REGION


async def faults(api: Api, spec: Any) -> tuple[int, dict[str, Any]]:
    async with api.client.post("/_emulator/faults", json=spec) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_next_n_calls_of_an_action_get_the_code(api: Api) -> None:
    await faults(api, {"action": "GetCluster", "code": "ServiceUnavailable", "count": 2})
    got = [
        (await api.call("GetCluster", {"RegionId": REGION, "ClusterId": CLUSTER_ID})).status for _ in range(3)
    ]
    assert got == [503, 503, 200]
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200
    assert [c.outcome for c in api.state.calls] == ["ServiceUnavailable", "ServiceUnavailable", "OK", "OK"]


async def test_internal_error_is_a_500_with_an_emr_body(api: Api) -> None:
    await faults(api, [{"code": "InternalError", "count": 1}])
    reply = await api.call("ListClusters", {"RegionId": REGION})
    assert (reply.status, reply.code) == (500, "InternalError")
    assert set(reply.body) == {"RequestId", "HostId", "Code", "Message"}


async def test_injected_throttling_carries_retry_after(api: Api) -> None:
    await faults(api, {"action": "RunApplicationAction", "code": "Throttling.User", "count": 1})
    reply = await api.call("RunApplicationAction", restart_params())
    assert reply.code == "Throttling.User" and int(reply.headers["x-acs-retry-after"]) >= 1
    assert api.state.world.operations == {}


def test_after_lines_rules_up_in_a_sequence() -> None:
    """``after`` lets the first M matching calls through (whatever other rules do to them)."""
    book = FaultBook()
    book.add(parse_fault({"action": "RunApplicationAction", "code": "ThrottlingException", "count": 2}))
    book.add(
        parse_fault({"action": "RunApplicationAction", "code": "InvokeEcmError", "after": 2, "count": 2})
    )
    assert book.draw("GetOperation", None) is None  # other actions do not count
    codes = []
    for _ in range(6):
        hit = book.draw("RunApplicationAction", None)
        codes.append(hit.code if hit else None)
    assert codes == ["ThrottlingException"] * 2 + ["InvokeEcmError"] * 2 + [None, None]
    assert book.active() == []


def test_after_alone_fires_from_the_next_call_on() -> None:
    book = FaultBook()
    book.add(parse_fault({"action": "GetOperation", "code": "ResourceNotFound", "after": 1}))
    assert book.active()[0]["skipping"] == 1
    hits = [book.draw("GetOperation", None) for _ in range(3)]
    assert [h.code if h else None for h in hits] == [None, "ResourceNotFound", "ResourceNotFound"]


def test_probability_is_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[bool]:
        book = FaultBook(seed=seed)
        book.add(parse_fault({"code": "ServiceFailure", "probability": 0.5}))
        return [book.draw("ListClusters", None) is not None for _ in range(200)]

    assert draws(1) == draws(1)
    assert 60 < sum(draws(1)) < 140


async def test_latency_is_real_seconds(api: Api) -> None:
    await faults(api, {"action": "ListClusters", "latency": 0.3, "count": 1})
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.1):
            await api.call("ListClusters", {"RegionId": REGION})
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200


async def test_drop_after_apply_runs_the_action_and_sends_nothing(api: Api) -> None:
    await faults(api, {"action": "RunApplicationAction", "drop_after_apply": True, "count": 1})
    with pytest.raises(aiohttp.ClientError):
        await api.call("RunApplicationAction", restart_params())
    assert len(api.state.world.operations) == 1
    record = api.state.calls[-1]
    assert record.dropped and record.http_status is None and record.operation_id is not None


async def test_drop_before_apply_sends_nothing_and_does_nothing(api: Api) -> None:
    await faults(api, {"action": "RunApplicationAction", "drop_before_apply": True, "count": 1})
    with pytest.raises(aiohttp.ClientError):
        await api.call("RunApplicationAction", restart_params())
    assert api.state.world.operations == {}


@pytest.mark.parametrize(
    "spec",
    [
        {"code": "NoSuchCode"},
        {"code": "InternalError", "probability": 2},
        {"action": "X"},
        {"code": "InternalError", "drop_after_apply": True},
        {"code": "InternalError", "count": 0},
        {"code": "InternalError", "after": -1},
        "text",
        {"code": "InternalError", "surprise": 1},
    ],
)
async def test_bad_fault_specs_are_refused(api: Api, spec: Any) -> None:
    status, body = await faults(api, spec)
    assert (status, body["Code"]) == (400, "InvalidParameter")


async def test_faults_from_the_scenario_and_reset(api_factory: Any) -> None:
    api = await api_factory({"faults": [{"action": "ListClusters", "code": "InvokeEcmError", "count": 1}]})
    assert (await api.call("ListClusters", {"RegionId": REGION})).code == "InvokeEcmError"
    assert (await api.call("RunApplicationAction", restart_params())).status == 200
    async with api.client.get("/_emulator/state") as resp:
        state = await resp.json()
    assert len(state["operations"]) == 1
    assert {c["ClusterId"] for c in state["clusters"]} == {CLUSTER_ID}
    async with api.client.post("/_emulator/reset") as resp:
        assert resp.status == 200
    assert api.state.calls == [] and api.state.world.operations == {}
    assert (
        await api.call("ListClusters", {"RegionId": REGION})
    ).code == "InvokeEcmError"  # scenario faults return


async def test_delete_faults_clears_them(api: Api) -> None:
    await faults(api, {"code": "InternalError"})
    async with api.client.delete("/_emulator/faults") as resp:
        assert (await resp.json())["faults"] == []
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200


async def test_fault_for_one_cluster_only(api_factory: Any) -> None:
    api = await api_factory({"clusters": [{"generate": {"count": 2, "prefix": "c-g"}}]})
    await faults(api, {"code": "ServiceFailure", "cluster_id": "c-g0002"})
    assert (await api.call("GetCluster", {"RegionId": REGION, "ClusterId": "c-g0001"})).status == 200
    failed = await api.call("GetCluster", {"RegionId": REGION, "ClusterId": "c-g0002"})
    assert failed.code == "ServiceFailure" and "%s" not in failed.body["Message"]


async def test_a_node_state_set_by_the_inspection_api_shows_in_list_nodes(api: Api) -> None:
    body = {"cluster_id": CLUSTER_ID, "node": "core1-2", "abnormal": False, "state": "Stopped"}
    async with api.client.post("/_emulator/nodes", json=body) as resp:
        assert resp.status == 200 and (await resp.json())["NodeState"] == "Stopped"
    reply = await api.call(
        "ListNodes", {"RegionId": REGION, "ClusterId": CLUSTER_ID, "NodeNames.1": "core1-2"}
    )
    assert [n["NodeState"] for n in reply.body["Nodes"]] == ["Stopped"]
