"""Our client against the official Python SDK: same request in, same bytes on the wire out.

The SDK (alibabacloud-emr20210320 + alibabacloud-tea-openapi) runs in-process with its clock,
nonce and user agent fixed (``Utils.get_timestamp`` / ``get_nonce`` / ``get_user_agent``) and its
HTTP session replaced by a recorder that captures the prepared ``requests`` request (the final
URL and headers that would go on the wire) and answers with a canned JSON body. Our client runs
with the same fixed inputs over a recording transport. Both must produce the same query string
(as a multiset of ``key=value`` segments, the SDK's wire order being its model's field order) and
the same ``Authorization`` header, which also pins the reference's published signatures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from alibabacloud_emr20210320 import models as sdk_models
from alibabacloud_emr20210320.client import Client as SdkClient
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.core import DaraCore
from emr_helpers import FIXED_NONCE, SDK_UA, Recorder, ok, query_of, sdk_like_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from emrops.emr import models
from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.http import HttpRequest, HttpResponse

AK = "testAccessKeyId"
SECRET = "testAccessKeySecret"
STS_TOKEN = "testSecurityToken"
REFERENCE_AK_SIGNATURE = "26395b3421e40578f2528c4521bdf7a67d08079f32c464c3cdac57e20fbf3163"
REFERENCE_STS_SIGNATURE = "4a7bf0c071071264860d497fadcd4fe8c5eb607b211fd35103a3ccf52a81b163"

# Bodies both clients can parse, per action.
BODIES: dict[str, dict[str, Any]] = {
    "GetOperation": {"RequestId": "r", "Operation": {"OperationId": "op-1", "OperationState": "COMPLETED"}},
    "RunApplicationAction": {"RequestId": "r", "OperationId": "op-1", "AbnInstances": []},
    "ListClusters": {"RequestId": "r", "Clusters": []},
    "GetCluster": {"RequestId": "r", "Cluster": {"ClusterId": "c-1"}},
    "ListNodes": {"RequestId": "r", "Nodes": []},
    "ListComponentInstances": {"RequestId": "r", "ComponentInstances": []},
}


@dataclass
class Captured:
    url: str
    headers: dict[str, str]


@dataclass
class _FakeResponse:
    content: bytes
    status_code: int = 200
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


class _RecordingSession:
    """Stands in for the SDK's ``requests.Session``: keeps the prepared request, answers JSON."""

    def __init__(self) -> None:
        self.captured: list[Captured] = []

    def send(self, prepared: Any, **_: Any) -> _FakeResponse:
        action = prepared.headers["x-acs-action"]
        self.captured.append(Captured(prepared.url, {k.lower(): v for k, v in prepared.headers.items()}))
        return _FakeResponse(json.dumps(BODIES[action]).encode())


@pytest.fixture(scope="module")
def session() -> Iterator[_RecordingSession]:
    recording = _RecordingSession()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Utils, "get_timestamp", staticmethod(lambda: "2024-01-01T00:00:00Z"))
        mp.setattr(Utils, "get_nonce", staticmethod(lambda: FIXED_NONCE))
        mp.setattr(Utils, "get_user_agent", staticmethod(lambda user_agent=None: SDK_UA))
        mp.setattr(DaraCore, "_get_session", staticmethod(lambda *a, **k: recording))
        yield recording


def _sdk(token: str | None = None, region: str = "cn-hangzhou") -> SdkClient:
    return SdkClient(
        Config(access_key_id=AK, access_key_secret=SECRET, security_token=token, region_id=region)
    )


def sdk_request(
    session: _RecordingSession, call: Callable[[SdkClient], Any], token: str | None = None
) -> Captured:
    before = len(session.captured)
    call(_sdk(token))
    assert len(session.captured) == before + 1
    return session.captured[-1]


async def our_request(
    call: Callable[[EmrClient, StaticCredentials], Any], token: str | None = None
) -> HttpRequest:
    recorder = Recorder()

    def answer(request: HttpRequest) -> HttpResponse:
        return ok(BODIES[request.headers["x-acs-action"]])

    recorder.reply(answer)
    credentials = StaticCredentials(AK, SECRET, security_token=token)
    async with sdk_like_client(recorder) as client:
        await call(client, credentials)
    (sent,) = recorder.requests
    return sent


def assert_same_wire(sdk: Captured, ours: HttpRequest) -> None:
    sdk_url = URL(sdk.url, encoded=True)
    assert (ours.url.scheme, ours.url.host, ours.url.path) == (sdk_url.scheme, sdk_url.host, sdk_url.path)
    assert sorted(query_of(ours).split("&")) == sorted(sdk_url.raw_query_string.split("&"))
    signed = ours.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    for name in signed:
        assert ours.headers[name] == sdk.headers[name], name
    assert ours.headers["authorization"] == sdk.headers["authorization"]


# --- GetOperation: the reference vectors ---------------------------------------------------------

GET_OP = models.GetOperationRequest(
    region_id="cn-hangzhou", cluster_id="c-b933c5aac8fe****", operation_id="op-13c37a77c505****"
)
SDK_GET_OP = sdk_models.GetOperationRequest(
    region_id="cn-hangzhou", cluster_id="c-b933c5aac8fe****", operation_id="op-13c37a77c505****"
)


@pytest.mark.parametrize(
    ("token", "signature"), [(None, REFERENCE_AK_SIGNATURE), (STS_TOKEN, REFERENCE_STS_SIGNATURE)]
)
async def test_get_operation_matches_sdk_and_reference(
    session: _RecordingSession, token: str | None, signature: str
) -> None:
    sdk = sdk_request(session, lambda c: c.get_operation(SDK_GET_OP), token)
    ours = await our_request(lambda c, cr: c.get_operation(GET_OP, credentials=cr), token)
    assert_same_wire(sdk, ours)
    assert ours.headers["authorization"].endswith(f"Signature={signature}")
    assert ours.headers["host"] == "emr.aliyuncs.com"


# --- RunApplicationAction: nested lists, unicode, reserved characters, booleans --------------------

NASTY = "hello world *~/+&=中文 ünïcödé 😀 %20 a+b"
# Characters where encoders differ (space, reserved, unreserved, multi-byte), drawn often.
SPECIAL = st.sampled_from(list(" *~/+&=%.-_!'()中ü😀\t\n"))


def _run_requests(
    description: str, rolling: bool
) -> tuple[models.RunApplicationActionRequest, sdk_models.RunApplicationActionRequest]:
    nodes = ["i-bp1emrdemo000core1", "i-bp1emrdemo000core2", "i-bp1emrdemo000core3"]
    ours = models.RunApplicationActionRequest(
        region_id="cn-hangzhou",
        cluster_id="c-8a3f2e1d9b7c6a50",
        action_name=models.ActionName.RESTART,
        component_instance_selector=models.ComponentInstanceSelector(
            run_action_scope=models.RunActionScope.COMPONENT_INSTANCE,
            application_name="YARN",
            components=[models.ComponentRef(application_name="YARN", component_name="NodeManager")],
            component_instances=[
                models.ComponentInstanceRef(application_name="YARN", component_name="NodeManager", node_id=n)
                for n in nodes
            ],
        ),
        rolling_execute=rolling,
        execute_strategy=models.ExecuteStrategy.FAILED_CONTINUE,
        interval=10,
        batch_size=2,
        description=description,
    )
    sdk = sdk_models.RunApplicationActionRequest(
        region_id="cn-hangzhou",
        cluster_id="c-8a3f2e1d9b7c6a50",
        action_name="restart",
        component_instance_selector=sdk_models.ComponentInstanceSelector(
            run_action_scope="COMPONENT_INSTANCE",
            application_name="YARN",
            components=[
                sdk_models.ComponentInstanceSelectorComponents(
                    application_name="YARN", component_name="NodeManager"
                )
            ],
            component_instances=[
                sdk_models.ComponentInstanceSelectorComponentInstances(
                    application_name="YARN", component_name="NodeManager", node_id=n
                )
                for n in nodes
            ],
        ),
        rolling_execute=rolling,
        execute_strategy="FAILED_CONTINUE",
        interval=10,
        batch_size=2,
        description=description,
    )
    return ours, sdk


@pytest.mark.parametrize("token", [None, STS_TOKEN])
@pytest.mark.parametrize("rolling", [True, False])
async def test_run_application_action_matches_sdk(
    session: _RecordingSession, token: str | None, rolling: bool
) -> None:
    ours_req, sdk_req = _run_requests(NASTY, rolling)
    sdk = sdk_request(session, lambda c: c.run_application_action(sdk_req), token)
    ours = await our_request(lambda c, cr: c.run_application_action(ours_req, credentials=cr), token)
    assert_same_wire(sdk, ours)
    segments = query_of(ours).split("&")
    assert f"RollingExecute={rolling}" in segments
    assert "ComponentInstanceSelector.ComponentInstances.3.NodeId=i-bp1emrdemo000core3" in segments


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=st.text(alphabet=SPECIAL | st.characters(codec="utf-8"), max_size=20))
async def test_any_description_signs_like_the_sdk(session: _RecordingSession, description: str) -> None:
    ours_req, sdk_req = _run_requests(description, True)
    sdk = sdk_request(session, lambda c: c.run_application_action(sdk_req))
    ours = await our_request(lambda c, cr: c.run_application_action(ours_req, credentials=cr))
    assert_same_wire(sdk, ours)


# --- The read APIs ------------------------------------------------------------------------------

# (action, client method, request class name in both model modules, the same arguments for both):
# one set of arguments, so our request and the SDK's cannot drift apart.
READS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "ListClusters",
        "list_clusters",
        "ListClustersRequest",
        {"region_id": "cn-hangzhou", "cluster_ids": ["c-1", "c-2"], "cluster_states": ["RUNNING"],
         "max_results": 20},
    ),
    ("GetCluster", "get_cluster", "GetClusterRequest", {"region_id": "cn-hangzhou", "cluster_id": "c-1"}),
    (
        "ListNodes",
        "list_nodes",
        "ListNodesRequest",
        {"region_id": "cn-hangzhou", "cluster_id": "c-1", "node_ids": ["i-1", "i-2"],
         "node_states": ["Running"], "max_results": 100, "next_token": "tok/+="},
    ),
    (
        "ListComponentInstances",
        "list_component_instances",
        "ListComponentInstancesRequest",
        {"region_id": "cn-hangzhou", "cluster_id": "c-1", "application_names": ["HDFS", "YARN"],
         "component_names": ["DataNode"], "component_states": ["STARTED"], "node_names": ["core1-1"]},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("action", "method", "request_class", "arguments"), READS, ids=[r[0] for r in READS])
async def test_read_apis_match_sdk(
    session: _RecordingSession, action: str, method: str, request_class: str, arguments: dict[str, Any]
) -> None:
    sdk_req = getattr(sdk_models, request_class)(**arguments)
    ours_req = getattr(models, request_class)(**arguments)
    sdk = sdk_request(session, lambda c: getattr(c, method)(sdk_req))
    ours = await our_request(lambda c, cr: getattr(c, method)(ours_req, credentials=cr))
    assert ours.headers["x-acs-action"] == action
    assert_same_wire(sdk, ours)
