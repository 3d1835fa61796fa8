"""Invalid ServiceActions are refused by the real apiserver at apply time, and never disturb the operator.

Hypothesis starts from a valid spec and breaks it in one way the CRD promises to refuse (a
missing required field, a value outside an enum or pattern, a wrong type, a rolling parameter
without ``rollingExecute``, an out-of-range number, an over-long string, a bad Secret name, a
selector that names nothing for its scope). Every such object must be answered 422 Invalid by
the apiserver (OpenAPI schema or CEL), so it never exists and the operator never sees it.

Then, with the operator running throughout, objects the schema accepts but EMR refuses (unknown
cluster, unknown component) must end Failed with a message, and a valid object created last must
still succeed: garbage before it changed nothing.
"""

from __future__ import annotations

import copy
import re
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.objects import CLUSTER_ID, component_restart
from harness.processes import wait_for
from harness.status import TERMINAL_PHASES

pytestmark = pytest.mark.integration

REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
CLUSTER_RE = re.compile(r"^[cC]-[0-9a-zA-Z]+$")
NODE_RE = re.compile(r"^i-[0-9a-zA-Z]+$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def valid_spec() -> dict[str, Any]:
    return {
        "regionId": "cn-hangzhou",
        "clusterId": CLUSTER_ID,
        "actionName": "restart",
        "componentInstanceSelector": {
            "runActionScope": "COMPONENT_INSTANCE",
            "componentInstances": [
                {"applicationName": "YARN", "componentName": "NodeManager", "nodeId": "i-bp1emrdemo000task1"}
            ],
        },
        "rollingExecute": True,
        "executeStrategy": "FAILED_CONTINUE",
        "interval": 1,
        "batchSize": 1,
        "description": "bad-input",
    }


Mutation = Callable[[dict[str, Any]], None]

not_a_string = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
not_an_int = st.one_of(
    st.text(max_size=5),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
    st.lists(st.integers(), max_size=2),
)


def _set(path: str, value: Any) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        node: Any = spec
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    apply.__name__ = f"set {path}={value!r}"[:120]
    return apply


def _delete(path: str) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        node: Any = spec
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[parts[-1]]

    apply.__name__ = f"delete {path}"
    return apply


def _no_rolling(field: str) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        spec["rollingExecute"] = False
        for other in ("interval", "batchSize", "executeStrategy"):
            if other != field:
                spec.pop(other, None)

    apply.__name__ = f"{field} without rollingExecute"
    return apply


def _scope_without_targets(scope: str) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        spec["componentInstanceSelector"] = {"runActionScope": scope}

    apply.__name__ = f"scope {scope} naming nothing"
    return apply


SELECTOR = "componentInstanceSelector"
INSTANCE = f"{SELECTOR}.componentInstances.0"

mutations: st.SearchStrategy[Mutation] = st.one_of(
    st.sampled_from(
        [
            "regionId",
            "clusterId",
            "actionName",
            SELECTOR,
            f"{SELECTOR}.runActionScope",
            f"{INSTANCE}.nodeId",
            f"{INSTANCE}.componentName",
            f"{INSTANCE}.applicationName",
        ]
    ).map(_delete),
    st.text(max_size=70)
    .filter(lambda s: not REGION_RE.fullmatch(s) or len(s) > 64)
    .map(lambda v: _set("regionId", v)),
    st.text(max_size=70)
    .filter(lambda s: not CLUSTER_RE.fullmatch(s) or not 3 <= len(s) <= 64)
    .map(lambda v: _set("clusterId", v)),
    st.text(max_size=20)
    .filter(lambda s: s not in {"start", "stop", "restart", "config", "refresh_queues", "refresh_labels"})
    .map(lambda v: _set("actionName", v)),
    st.text(max_size=20)
    .filter(lambda s: s not in {"APPLICATION", "COMPONENT", "COMPONENT_INSTANCE"})
    .map(lambda v: _set(f"{SELECTOR}.runActionScope", v)),
    st.text(max_size=20)
    .filter(lambda s: s not in {"FAILED_BLOCK", "FAILED_CONTINUE"})
    .map(lambda v: _set("executeStrategy", v)),
    st.text(max_size=70)
    .filter(lambda s: not NODE_RE.fullmatch(s) or len(s) > 64)
    .map(lambda v: _set(f"{INSTANCE}.nodeId", v)),
    st.sampled_from(["interval", "batchSize", "executeStrategy"]).map(_no_rolling),
    st.sampled_from(["APPLICATION", "COMPONENT", "COMPONENT_INSTANCE"]).map(_scope_without_targets),
    st.one_of(st.integers(max_value=0), st.integers(min_value=1001)).map(lambda v: _set("batchSize", v)),
    st.one_of(st.integers(max_value=-1), st.integers(min_value=86401)).map(lambda v: _set("interval", v)),
    st.integers(max_value=0).map(lambda v: _set("activeDeadlineSeconds", v)),
    st.text(min_size=257, max_size=400).map(lambda v: _set("description", v)),
    st.text(max_size=30)
    .filter(lambda s: not DNS1123.fullmatch(s))
    .map(lambda v: _set("credentialsSecretRef", {"name": v})),
    st.just(_set("credentialsSecretRef", {})),
    st.sampled_from(
        [
            "regionId",
            "clusterId",
            "actionName",
            "description",
            f"{SELECTOR}.runActionScope",
            f"{INSTANCE}.nodeId",
        ]
    ).flatmap(lambda p: not_a_string.map(lambda v: _set(p, v))),
    st.sampled_from(["batchSize", "interval", "activeDeadlineSeconds"]).flatmap(
        lambda p: not_an_int.map(lambda v: _set(p, v))
    ),
    not_a_string.filter(lambda v: not isinstance(v, bool)).map(lambda v: _set("rollingExecute", v)),
    st.one_of(not_a_string, st.text(max_size=5))
    .filter(lambda v: not isinstance(v, dict))
    .map(lambda v: _set(SELECTOR, v)),
)


class ApiServer:
    """Raw HTTPS access to the apiserver as admin (kubectl per example would be far too slow)."""

    def __init__(self, control_plane: Any) -> None:
        context = ssl.create_default_context(cafile=str(control_plane.ca_file))
        context.load_cert_chain(*(str(p) for p in control_plane.admin_cert))
        self.client = httpx.Client(base_url=control_plane.server, verify=context, timeout=30)

    def path(self, namespace: str, name: str = "") -> str:
        base = f"/apis/emrops.io/v1alpha1/namespaces/{namespace}/serviceactions"
        return f"{base}/{name}" if name else base

    def create(self, namespace: str, body: dict[str, Any]) -> httpx.Response:
        # Strict field validation: an unknown field is an error too, not silently pruned.
        return self.client.post(self.path(namespace), json=body, params={"fieldValidation": "Strict"})

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        response = self.client.get(self.path(namespace, name))
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture
def apiserver(control_plane: Any) -> Iterator[ApiServer]:
    api = ApiServer(control_plane)
    yield api
    api.client.close()


_counter = iter(range(10**9))


@pytest.fixture
def running_operator(start_emulator: Any, start_operator: Any) -> Any:
    emulator = start_emulator()
    return emulator, start_operator(emulator)


def test_invalid_specs_are_refused_and_the_operator_carries_on(
    apiserver: ApiServer, namespace: str, running_operator: Any
) -> None:
    emulator, operator = running_operator
    refused: list[str] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(mutation=mutations)
    def one_invalid_object(mutation: Mutation) -> None:
        spec = copy.deepcopy(valid_spec())
        mutation(spec)
        name = f"bad-{next(_counter)}"
        body = {
            "apiVersion": "emrops.io/v1alpha1",
            "kind": "ServiceAction",
            "metadata": {"name": name},
            "spec": spec,
        }
        response = apiserver.create(namespace, body)
        assert response.status_code in (400, 422), (
            mutation.__name__,
            response.status_code,
            response.text[:500],
        )
        assert response.json().get("reason") in ("Invalid", "BadRequest"), response.text[:500]
        refused.append(mutation.__name__)

    one_invalid_object()
    assert len(refused) >= 50

    # Accepted by the schema, refused by EMR: each must end Failed, with a message.
    nonsense = [
        component_restart("nonsense-cluster", "YARN", "NodeManager", clusterId="c-doesnotexist0"),
        component_restart("nonsense-component", "YARN", "NoSuchComponent"),
        component_restart("nonsense-region", "YARN", "NodeManager", regionId="eu-nowhere-9"),
    ]
    for manifest in nonsense:
        assert apiserver.create(namespace, manifest).status_code == 201

    valid = {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": "valid-last"},
        "spec": valid_spec(),
    }
    assert apiserver.create(namespace, valid).status_code == 201

    def finished() -> bool:
        names = [m["metadata"]["name"] for m in nonsense] + ["valid-last"]
        phases = [(apiserver.get(namespace, n).get("status") or {}).get("phase") for n in names]
        return all(p in TERMINAL_PHASES for p in phases)

    wait_for(finished, timeout=180, interval=0.5, what="the nonsense objects and the valid one to finish")
    for manifest in nonsense:
        status = apiserver.get(namespace, manifest["metadata"]["name"])["status"]
        assert status["phase"] == "Failed", status
        assert status.get("message"), status
        assert not status.get("operationId")
    assert apiserver.get(namespace, "valid-last")["status"]["phase"] == "Succeeded"
    assert operator.running
    ok_runs = [
        c for c in emulator.calls() if c.get("action") == "RunApplicationAction" and c.get("operation_id")
    ]
    assert len(ok_runs) == 1, ok_runs  # only the valid object ever reached EMR successfully
    assert "Traceback" not in operator.log_text()
    time.sleep(0)
