"""One function per EMR API: read the parameters, check them as EMR does, answer from the model.

Each handler takes the call's ``Context`` and ``Params`` and returns an ``Outcome`` (the response
body without RequestId, plus the operation it created, if any), or raises ``EmulatorError``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from emrops.emulator.engine import OperationEngine
from emrops.emulator.errors import EmulatorError
from emrops.emulator.model import (
    ACTION_NAMES,
    EXECUTE_STRATEGIES,
    RUN_ACTION_SCOPES,
    ActionRequest,
    Cluster,
    ComponentRef,
    InstanceRef,
    Selector,
    World,
)
from emrops.emulator.params import Params
from emrops.emulator.scenario import AccessKey, Scenario

DEFAULT_MAX_RESULTS = 20


@dataclass
class Context:
    world: World
    engine: OperationEngine
    scenario: Scenario
    key: AccessKey
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))


@dataclass
class Outcome:
    body: dict[str, Any]
    operation_id: str | None = None


Handler = Callable[[Context, Params], Outcome]


# --- helpers ----------------------------------------------------------------------------------


def _authorize(ctx: Context, cluster_id: str) -> None:
    allowed = ctx.key.clusters
    if allowed is not None and cluster_id not in allowed:
        raise EmulatorError(
            "NotAuthorized", f"Access key {ctx.key.access_key_id} may not act on cluster {cluster_id}."
        )


def _cluster(ctx: Context, params: Params) -> Cluster:
    region_id = params.required("RegionId")
    cluster_id = params.required("ClusterId")
    _authorize(ctx, cluster_id)
    return ctx.world.cluster(region_id, cluster_id)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"emrops:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeError, ValueError):
        raise EmulatorError("InvalidParameter", "NextToken") from None
    if prefix != "emrops" or offset < 0:
        raise EmulatorError("InvalidParameter", "NextToken")
    return offset


def _page(params: Params, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """EMR's paging: MaxResults 1-100 (default 20), an opaque NextToken, TotalCount."""
    max_results = params.integer("MaxResults")
    if max_results is None:
        max_results = DEFAULT_MAX_RESULTS
    if not 1 <= max_results <= 100:
        raise EmulatorError("InvalidParameterValue", "MaxResults")
    token = params.text("NextToken")
    offset = _decode_token(token) if token else 0
    body: dict[str, Any] = {
        key: items[offset : offset + max_results],
        "MaxResults": max_results,
        "TotalCount": len(items),
    }
    if offset + max_results < len(items):
        body["NextToken"] = _encode_token(offset + max_results)
    return body


def _keep(items: Iterable[dict[str, Any]], field_name: str, wanted: list[str]) -> list[dict[str, Any]]:
    return [i for i in items if not wanted or i.get(field_name) in wanted]


# --- read APIs --------------------------------------------------------------------------------


def list_clusters(ctx: Context, params: Params) -> Outcome:
    region_id = params.required("RegionId")
    allowed = ctx.key.clusters
    items = [
        c.summary()
        for c in ctx.world.clusters.values()
        if c.region_id == region_id and (allowed is None or c.cluster_id in allowed)
    ]
    items = _keep(items, "ClusterId", params.strings("ClusterIds"))
    items = _keep(items, "ClusterState", params.strings("ClusterStates"))
    items = _keep(items, "ClusterType", params.strings("ClusterTypes"))
    items = _keep(items, "PaymentType", params.strings("PaymentTypes"))
    params.objects("Tags")  # accepted for shape; the emulated clusters carry no tags
    name = params.text("ClusterName")
    if name:
        items = [i for i in items if name in i["ClusterName"]]
    return Outcome(_page(params, "Clusters", items))


def get_cluster(ctx: Context, params: Params) -> Outcome:
    return Outcome({"Cluster": _cluster(ctx, params).to_api()})


def list_nodes(ctx: Context, params: Params) -> Outcome:
    cluster = _cluster(ctx, params)
    items = [n.to_api() for n in cluster.nodes.values()]
    for name, api_field in (
        ("NodeGroupIds", "NodeGroupId"),
        ("NodeIds", "NodeId"),
        ("NodeNames", "NodeName"),
        ("NodeStates", "NodeState"),
        ("PrivateIps", "PrivateIp"),
        ("PublicIps", "PublicIp"),
    ):
        items = _keep(items, api_field, params.strings(name))
    params.objects("Tags")
    return Outcome(_page(params, "Nodes", items))


def list_component_instances(ctx: Context, params: Params) -> Outcome:
    cluster = _cluster(ctx, params)
    items = [i.to_api() for i in cluster.instances.values()]
    for name, api_field in (
        ("ApplicationNames", "ApplicationName"),
        ("ComponentNames", "ComponentName"),
        ("ComponentStates", "ComponentInstanceState"),
        ("NodeIds", "NodeId"),
        ("NodeNames", "NodeName"),
    ):
        items = _keep(items, api_field, params.strings(name))
    zone = params.text("ZoneId")
    if zone:
        items = [i for i in items if i["ZoneId"] == zone]
    return Outcome(_page(params, "ComponentInstances", items))


def get_operation(ctx: Context, params: Params) -> Outcome:
    cluster = _cluster(ctx, params)
    op = ctx.world.operation(cluster, params.required("OperationId"))
    return Outcome({"Operation": op.to_api()})


# --- RunApplicationAction ---------------------------------------------------------------------


def parse_action_request(params: Params, scenario: Scenario) -> ActionRequest:
    """Check a RunApplicationAction's parameters in EMR's order; the first problem is the answer."""
    region_id = params.required("RegionId")
    cluster_id = params.required("ClusterId")
    action_name = params.required("ActionName")
    raw_selector = params.raw("ComponentInstanceSelector")
    if raw_selector is None or raw_selector == "":
        raise EmulatorError("MissingParameter", "ComponentInstanceSelector")
    if not isinstance(raw_selector, dict):
        raise EmulatorError("InvalidParameter", "ComponentInstanceSelector")
    rolling_flag = params.boolean("RollingExecute")
    interval = params.integer("Interval")
    batch_size = params.integer("BatchSize")
    strategy = params.text("ExecuteStrategy")
    description = params.text("Description") or ""

    if action_name not in ACTION_NAMES:
        raise EmulatorError("InvalidParameterValue", "ActionName")
    if strategy is not None and strategy not in EXECUTE_STRATEGIES:
        raise EmulatorError("InvalidParameterValue", "ExecuteStrategy")
    if interval is not None and interval < 0:
        raise EmulatorError("InvalidParameterValue", "Interval")
    if batch_size is not None and batch_size < 1:
        raise EmulatorError("InvalidParameterValue", "BatchSize")

    scope = params.text("ComponentInstanceSelector.RunActionScope") or params.text(
        "ComponentInstanceSelector.ActionScope"
    )
    if scope is None:
        raise EmulatorError("MissingParameter", "ComponentInstanceSelector.RunActionScope")
    if scope not in RUN_ACTION_SCOPES:
        raise EmulatorError("InvalidParameter.InvalidRunActionScope")
    components = params.objects("ComponentInstanceSelector.Components")
    instances = params.objects("ComponentInstanceSelector.ComponentInstances")
    if components and scope != "COMPONENT":
        raise EmulatorError(
            "ConflictParameters", f"ComponentInstanceSelector.Components with RunActionScope {scope}."
        )
    if instances and scope != "COMPONENT_INSTANCE":
        raise EmulatorError(
            "ConflictParameters", f"ComponentInstanceSelector.ComponentInstances with RunActionScope {scope}."
        )
    rolling = bool(rolling_flag)
    if not rolling and scenario.validation.rolling_params_need_rolling_execute:
        for name, value in (("BatchSize", batch_size), ("Interval", interval)):
            if value is not None:
                raise EmulatorError("ConflictParameters", f"{name} without RollingExecute=true.")

    def text(obj: dict[str, Any], name: str, where: str) -> str | None:
        value = obj.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise EmulatorError("InvalidParameter", f"{where}.{name}")
        return value

    prefix = "ComponentInstanceSelector"
    selector = Selector(
        scope=scope,
        application=params.text(f"{prefix}.ApplicationName"),
        components=tuple(
            ComponentRef(
                text(c, "ApplicationName", f"{prefix}.Components.{n}"),
                text(c, "ComponentName", f"{prefix}.Components.{n}"),
            )
            for n, c in enumerate(components, start=1)
        ),
        instances=tuple(
            InstanceRef(
                text(c, "ApplicationName", f"{prefix}.ComponentInstances.{n}"),
                text(c, "ComponentName", f"{prefix}.ComponentInstances.{n}"),
                text(c, "NodeId", f"{prefix}.ComponentInstances.{n}"),
            )
            for n, c in enumerate(instances, start=1)
        ),
    )
    return ActionRequest(
        region_id=region_id,
        cluster_id=cluster_id,
        action_name=action_name,
        selector=selector,
        rolling=rolling,
        strategy=strategy or "FAILED_BLOCK",
        interval=interval if interval is not None else 0,
        batch_size=batch_size if batch_size is not None else 1,
        description=description,
    )


def run_application_action(ctx: Context, params: Params) -> Outcome:
    request = parse_action_request(params, ctx.scenario)
    _authorize(ctx, request.cluster_id)
    cluster = ctx.world.cluster(request.region_id, request.cluster_id)
    targets = ctx.world.resolve_targets(cluster, request.selector)
    busy = ctx.world.conflict(cluster.cluster_id, [t.key for t in targets])
    if busy is not None:
        raise EmulatorError("ConcurrentModification", f"component instance {'/'.join(busy)}")
    op = ctx.world.create_operation(request, targets, ctx.now_ms(), ctx.key.access_key_id)
    abnormal: dict[str, str] = {}
    for inst in targets:
        if inst.node.abnormal:
            abnormal.setdefault(inst.node.node_id, inst.node.name)
    ctx.engine.start(cluster, op)
    return Outcome(
        {
            "OperationId": op.operation_id,
            "AbnInstances": [{"NodeId": node_id, "NodeName": name} for node_id, name in abnormal.items()],
        },
        operation_id=op.operation_id,
    )


ACTIONS: dict[str, Handler] = {
    "ListClusters": list_clusters,
    "GetCluster": get_cluster,
    "ListNodes": list_nodes,
    "ListComponentInstances": list_component_instances,
    "GetOperation": get_operation,
    "RunApplicationAction": run_application_action,
}
