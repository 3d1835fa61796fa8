"""The official Alibaba Cloud SDK (alibabacloud-emr20210320) against the emulator.

Every implemented API succeeds with access-key, STS and legacy HMAC-SHA1 signing, sync and async;
a wrong secret is refused; every code of the RunApplicationAction page's error table is reachable
by the trigger docs/emulator.md documents, and the SDK parses it (code, HTTP status, request id).
The emulator runs in-process (``EmulatorServer`` on port 0); the sync SDK runs in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from alibabacloud_emr20210320 import models as m
from alibabacloud_emr20210320.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
from alibabacloud_tea_openapi.models import Config
from darabonba.runtime import RuntimeOptions

from emrops.acs.codes import TABLE
from emrops.emulator import EmulatorServer, EmulatorSettings
from emrops.emulator.scenario import parse_scenario
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, CLUSTER_NAME, REGION

pytestmark = pytest.mark.integration

SCENARIO: dict[str, Any] = {
    "engine": {"step_seconds": 5.0},
    "access_keys": [
        {"id": "STS.conformance", "secret": "sts-secret", "security_token": "sts-token"},
        {"id": "other-team", "secret": "other-secret", "clusters": ["c-elsewhere"]},
        {"id": "tiny-quota", "secret": "tiny-secret", "rate_limit": {"qps": 0.001, "burst": 1}},
    ],
}
MODES = {
    "access-key": {"access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET},
    "sts": {
        "access_key_id": "STS.conformance",
        "access_key_secret": "sts-secret",
        "security_token": "sts-token",
    },
    "hmac-sha1": {
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "signature_algorithm": "v2",
    },
    "hmac-sha1-sts": {
        "access_key_id": "STS.conformance",
        "access_key_secret": "sts-secret",
        "security_token": "sts-token",
        "signature_algorithm": "v2",
    },
}


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(EmulatorSettings(scenario=parse_scenario(SCENARIO), time_scale=0.01)) as srv:
        yield srv


def client(server: EmulatorServer, **config: Any) -> Client:
    options = {**MODES["access-key"], **config}
    return Client(Config(endpoint=server.endpoint, protocol="http", region_id=REGION, **options))


def selector(scope: str = "APPLICATION", **kwargs: Any) -> m.ComponentInstanceSelector:
    return m.ComponentInstanceSelector(run_action_scope=scope, **kwargs)


def run_request(**overrides: Any) -> m.RunApplicationActionRequest:
    fields: dict[str, Any] = {
        "region_id": REGION,
        "cluster_id": CLUSTER_ID,
        "action_name": "restart",
        "component_instance_selector": selector(application_name="HDFS"),
    }
    fields.update(overrides)
    return m.RunApplicationActionRequest(**fields)


READS: list[tuple[str, Any]] = [
    ("list_clusters", m.ListClustersRequest(region_id=REGION, max_results=10)),
    ("get_cluster", m.GetClusterRequest(region_id=REGION, cluster_id=CLUSTER_ID)),
    (
        "list_nodes",
        m.ListNodesRequest(region_id=REGION, cluster_id=CLUSTER_ID, node_ids=["i-bp1emrdemo000core1"]),
    ),
    (
        "list_component_instances",
        m.ListComponentInstancesRequest(
            region_id=REGION, cluster_id=CLUSTER_ID, application_names=["HDFS"], max_results=3
        ),
    ),
]


def check_reads(results: dict[str, Any]) -> None:
    assert results["list_clusters"].body.clusters[0].cluster_id == CLUSTER_ID
    assert results["get_cluster"].body.cluster.cluster_name == CLUSTER_NAME
    assert [n.node_name for n in results["list_nodes"].body.nodes] == ["core1-1"]
    cis = results["list_component_instances"].body
    assert cis.total_count == 5 and len(cis.component_instances) == 3 and cis.next_token


@pytest.mark.parametrize("mode", list(MODES))
async def test_every_api_sync(server: EmulatorServer, mode: str) -> None:
    sdk = client(server, **MODES[mode])

    def calls() -> tuple[dict[str, Any], Any, Any]:
        results = {name: getattr(sdk, name)(request) for name, request in READS}
        run = sdk.run_application_action(
            run_request(
                rolling_execute=True,
                batch_size=2,
                interval=1,
                execute_strategy="FAILED_CONTINUE",
                description="unicode 中文 * ~ / + & = spaces",
            )
        )
        op = sdk.get_operation(
            m.GetOperationRequest(region_id=REGION, cluster_id=CLUSTER_ID, operation_id=run.body.operation_id)
        )
        return results, run, op

    results, run, op = await asyncio.to_thread(calls)
    check_reads(results)
    assert run.status_code == 200 and run.body.operation_id.startswith("op-") and run.body.request_id
    assert op.body.operation.operation_state == "IN_PROGRESS"
    assert op.body.operation.operation_id == run.body.operation_id
    recorded = server.state.calls[-2]
    assert recorded.params["Description"] == "unicode 中文 * ~ / + & = spaces"
    assert recorded.signature == ("V1" if "sha1" in mode else "ACS3")


@pytest.mark.parametrize("mode", list(MODES))
async def test_every_api_async(server: EmulatorServer, mode: str) -> None:
    sdk = client(server, **MODES[mode])
    results = {name: await getattr(sdk, f"{name}_async")(request) for name, request in READS}
    check_reads(results)
    run = await sdk.run_application_action_async(
        run_request(
            component_instance_selector=selector(
                "COMPONENT_INSTANCE",
                component_instances=[
                    m.ComponentInstanceSelectorComponentInstances(
                        application_name="YARN", component_name="NodeManager", node_id="i-bp1emrdemo000task1"
                    )
                ],
            )
        )
    )
    op = await sdk.get_operation_async(
        m.GetOperationRequest(region_id=REGION, cluster_id=CLUSTER_ID, operation_id=run.body.operation_id)
    )
    assert op.body.operation.cluster_id == CLUSTER_ID


@pytest.mark.parametrize(
    ("mode", "code"), [("access-key", "IncompleteSignature"), ("hmac-sha1", "SignatureDoesNotMatch")]
)
async def test_wrong_secret_is_refused(server: EmulatorServer, mode: str, code: str) -> None:
    sdk = client(server, **{**MODES[mode], "access_key_secret": "not-the-secret"})
    with pytest.raises(AlibabaCloudException) as caught:
        await asyncio.to_thread(sdk.list_clusters, m.ListClustersRequest(region_id=REGION))
    assert caught.value.code == code and caught.value.status_code == 400


# --- every code of the seed's error table, by its documented trigger -----------------------------

Trigger = Callable[[EmulatorServer], Awaitable[Any]]


def _run(**overrides: Any) -> Trigger:
    async def trigger(server: EmulatorServer) -> Any:
        return await client(server).run_application_action_async(run_request(**overrides))

    return trigger


def _fault(code: str) -> Trigger:
    async def trigger(server: EmulatorServer) -> Any:
        from emrops.emulator.faults import parse_fault

        server.state.faults.add(parse_fault({"action": "RunApplicationAction", "code": code, "count": 1}))
        return await _run()(server)

    return trigger


def _generic(action: str) -> Trigger:
    async def trigger(server: EmulatorServer) -> Any:
        params = utils_models.Params(
            action=action,
            version="2021-03-20",
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        request = utils_models.OpenApiRequest(query={"RegionId": REGION})
        return await client(server).call_api_async(params, request, RuntimeOptions())

    return trigger


async def _concurrent(server: EmulatorServer) -> Any:
    await _run()(server)
    return await _run()(server)


async def _not_authorized(server: EmulatorServer) -> Any:
    sdk = client(server, access_key_id="other-team", access_key_secret="other-secret")
    return await sdk.run_application_action_async(run_request())


async def _throttled(server: EmulatorServer) -> Any:
    sdk = client(server, access_key_id="tiny-quota", access_key_secret="tiny-secret")
    await sdk.list_clusters_async(m.ListClustersRequest(region_id=REGION))
    return await sdk.list_clusters_async(m.ListClustersRequest(region_id=REGION))


async def _wrong_secret(server: EmulatorServer) -> Any:
    return await client(server, access_key_secret="wrong").list_clusters_async(
        m.ListClustersRequest(region_id=REGION)
    )


async def _no_operation_id(server: EmulatorServer) -> Any:
    return await client(server).get_operation_async(
        m.GetOperationRequest(region_id=REGION, cluster_id=CLUSTER_ID)
    )


TRIGGERS: dict[str, Trigger] = {
    "ConcurrentModification": _concurrent,
    "InvalidParameter.InvalidRunActionScope": _run(component_instance_selector=selector("CLUSTER_ID")),
    "MissingParameter.ComponentInstance": _run(component_instance_selector=selector("COMPONENT_INSTANCE")),
    "MissingParameter.NodeId": _run(
        component_instance_selector=selector(
            "COMPONENT_INSTANCE",
            component_instances=[
                m.ComponentInstanceSelectorComponentInstances(
                    application_name="HDFS", component_name="DataNode"
                )
            ],
        )
    ),
    "MissingParameter.ComponentName": _run(
        component_instance_selector=selector(
            "COMPONENT", components=[m.ComponentInstanceSelectorComponents(application_name="HDFS")]
        )
    ),
    "MissingParameter.ApplicationName": _run(component_instance_selector=selector("APPLICATION")),
    "MissingParameter.NodeGroupId": _fault("MissingParameter.NodeGroupId"),
    "InvokeEcmError": _fault("InvokeEcmError"),
    "ConflictParameters": _run(batch_size=2),
    "IncompleteSignature": _wrong_secret,
    "InvalidAction": _generic("NoSuchAction"),
    "InvalidParameter": _run(rolling_execute=True, batch_size="two"),
    "InvalidParameterValue": _run(action_name="explode"),
    "MissingAction": _generic(""),
    "MissingParameter": _no_operation_id,
    "NotAuthorized": _not_authorized,
    "ThrottlingException": _throttled,
    "ResourceNotFound": _run(cluster_id="c-0000000000000000"),
    "InternalError": _fault("InternalError"),
    "ServiceFailure": _fault("ServiceFailure"),
    "ServiceUnavailable": _fault("ServiceUnavailable"),
}


def test_every_seed_code_has_a_trigger() -> None:
    assert set(TRIGGERS) == {row.code for row in TABLE.values() if row.seed}
    assert len(TRIGGERS) == 21


@pytest.mark.parametrize("code", list(TRIGGERS))
async def test_seed_code_reaches_the_sdk(server: EmulatorServer, code: str) -> None:
    with pytest.raises(AlibabaCloudException) as caught:
        await TRIGGERS[code](server)
    error = caught.value
    assert error.code == code
    assert error.status_code == TABLE[code].http_status
    last = server.state.calls[-1]
    assert (last.outcome, last.http_status) == (code, TABLE[code].http_status)
    assert error.request_id == last.request_id
    if code == "ThrottlingException":
        assert isinstance(error, ThrottlingException) and error.retry_after > 0
