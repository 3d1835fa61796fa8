"""The emulated EMR world: clusters, node groups, nodes, component instances and operations.

Pure data and rules, no I/O and no clock of its own (callers pass times in). ``to_api`` methods
render objects exactly as the EMR 2021-03-20 APIs do (PascalCase keys, Unix-millisecond times).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from typing import Any

from emrops.emulator.errors import EmulatorError
from emrops.emulator.scenario import ClusterSpec, Scenario


class InstanceState(enum.StrEnum):
    WAITING = "WAITING"
    INSTALLING = "INSTALLING"
    INSTALLED = "INSTALLED"
    INSTALL_FAILED = "INSTALL_FAILED"
    STARTING = "STARTING"
    STARTED = "STARTED"
    START_FAILED = "START_FAILED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    STOP_FAILED = "STOP_FAILED"


class OperationState(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    HUMAN_PROCESSING = "HUMAN_PROCESSING"
    FAILED = "FAILED"


ACTION_NAMES = ("start", "stop", "config", "restart", "refresh_queues", "refresh_labels")
RUN_ACTION_SCOPES = ("APPLICATION", "COMPONENT", "COMPONENT_INSTANCE")
EXECUTE_STRATEGIES = ("FAILED_BLOCK", "FAILED_CONTINUE")

#: The states an instance passes through for each action (empty: a step with no state change).
ACTION_STATES: dict[str, tuple[InstanceState, ...]] = {
    "restart": (InstanceState.STOPPING, InstanceState.STOPPED, InstanceState.STARTING, InstanceState.STARTED),
    "stop": (InstanceState.STOPPING, InstanceState.STOPPED),
    "start": (InstanceState.STARTING, InstanceState.STARTED),
    "config": (),
    "refresh_queues": (),
    "refresh_labels": (),
}

#: (ApplicationName, ComponentName, NodeId): how EMR names one component instance.
InstanceKey = tuple[str, str, str]

# Components that report an HA role (BizState) or a commission state; others leave them empty.
_BIZ_STATE_COMPONENTS = {"NameNode", "ResourceManager", "HiveServer2", "HiveMetastore"}
_COMMISSION_COMPONENTS = {"DataNode", "NodeManager"}


@dataclass
class Node:
    node_id: str
    name: str
    node_group_id: str
    node_group_type: str
    instance_type: str
    zone_id: str
    private_ip: str
    create_time: int
    state: str = "Running"
    abnormal: bool = False
    #: Instances of this node an operation is acting on right now (MaintenanceStatus ON).
    busy: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "NodeId": self.node_id,
            "NodeName": self.name,
            "NodeGroupId": self.node_group_id,
            "NodeGroupType": self.node_group_type,
            "NodeState": self.state,
            "InstanceType": self.instance_type,
            "PrivateIp": self.private_ip,
            "ZoneId": self.zone_id,
            "CreateTime": self.create_time,
            "AutoRenew": False,
            "MaintenanceStatus": "ON" if self.busy else "OFF",
        }


@dataclass
class ComponentInstance:
    application: str
    component: str
    node: Node
    create_time: int
    state: InstanceState = InstanceState.STARTED
    desired_state: InstanceState = InstanceState.STARTED

    @property
    def key(self) -> InstanceKey:
        return (self.application, self.component, self.node.node_id)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ApplicationName": self.application,
            "ComponentName": self.component,
            "NodeId": self.node.node_id,
            "NodeName": self.node.name,
            "ZoneId": self.node.zone_id,
            "CreateTime": self.create_time,
            "ComponentInstanceState": self.state.value,
            "DesiredState": self.desired_state.value,
        }
        if self.component in _BIZ_STATE_COMPONENTS:
            out["BizState"] = "active"
        if self.component in _COMMISSION_COMPONENTS:
            out["CommissionState"] = "INSERVICE" if self.state == InstanceState.STARTED else "COMMISSIONED"
        return out


@dataclass
class Cluster:
    spec: ClusterSpec
    create_time: int
    nodes: dict[str, Node]
    #: In layout order: application, then component, then node order.
    instances: dict[InstanceKey, ComponentInstance]

    @property
    def cluster_id(self) -> str:
        return self.spec.cluster_id

    @property
    def region_id(self) -> str:
        return self.spec.region_id

    def node_by_name(self, name: str) -> Node | None:
        return next((n for n in self.nodes.values() if n.name == name), None)

    def summary(self) -> dict[str, Any]:
        return {
            "ClusterId": self.spec.cluster_id,
            "ClusterName": self.spec.name,
            "ClusterType": self.spec.cluster_type,
            "ClusterState": self.spec.state,
            "PaymentType": "PayAsYouGo",
            "RegionId": self.spec.region_id,
            "ReleaseVersion": self.spec.release_version,
            "ResourceGroupId": "rg-emrops-demo",
            "CreateTime": self.create_time,
            "ReadyTime": self.create_time + 300_000,
            "DeletionProtection": False,
            "EmrDefaultRole": "AliyunEMRDefaultRole",
            "Description": "",
            "Tags": [],
        }

    def to_api(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "DeployMode": "NORMAL",
            "SecurityMode": "NORMAL",
            "NodeAttributes": {
                "VpcId": "vpc-emrops0demo",
                "ZoneId": self.spec.zone_id,
                "SecurityGroupId": "sg-emrops0demo",
                "RamRole": "AliyunECSInstanceForEMRRole",
            },
            "StateChangeReason": {"Code": "UserRequest", "Message": ""},
        }


@dataclass
class Batch:
    index: int
    keys: list[InstanceKey]
    #: Unix seconds (float, for measuring spacing) when the batch started / ended; None = not yet.
    start: float | None = None
    end: float | None = None
    failed: list[InstanceKey] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return {
            "Index": self.index,
            "Instances": [_key_json(k) for k in self.keys],
            "Start": self.start,
            "End": self.end,
            "Failed": [_key_json(k) for k in self.failed],
        }


@dataclass
class Operation:
    operation_id: str
    cluster_id: str
    action_name: str
    strategy: str
    rolling: bool
    interval: int
    batch_size: int
    description: str
    targets: list[InstanceKey]
    batches: list[Batch]
    create_time: int
    access_key_id: str
    state: OperationState = OperationState.IN_PROGRESS
    start_time: int | None = None
    end_time: int | None = None
    reason_code: str | None = None
    reason_message: str | None = None

    @property
    def failed(self) -> list[InstanceKey]:
        return [k for b in self.batches for k in b.failed]

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "OperationId": self.operation_id,
            "ClusterId": self.cluster_id,
            "OperationState": self.state.value,
            "OperationType": "RUN_APPLICATION_ACTION",
            "Description": self.description,
            "CreateTime": self.create_time,
            "StartTime": self.start_time if self.start_time is not None else self.create_time,
        }
        if self.end_time is not None:
            out["EndTime"] = self.end_time
        if self.reason_code is not None:
            out["StateChangeReason"] = {"Code": self.reason_code, "Message": self.reason_message or ""}
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            **self.to_api(),
            "ActionName": self.action_name,
            "ExecuteStrategy": self.strategy,
            "RollingExecute": self.rolling,
            "Interval": self.interval,
            "BatchSize": self.batch_size,
            "AccessKeyId": self.access_key_id,
            "Targets": [_key_json(k) for k in self.targets],
            "Batches": [b.to_state() for b in self.batches],
        }


def _key_json(key: InstanceKey) -> dict[str, str]:
    return {"ApplicationName": key[0], "ComponentName": key[1], "NodeId": key[2]}


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentRef:
    application: str | None
    component: str | None


@dataclass(frozen=True)
class InstanceRef:
    application: str | None
    component: str | None
    node_id: str | None


@dataclass(frozen=True)
class Selector:
    scope: str
    application: str | None = None
    components: tuple[ComponentRef, ...] = ()
    instances: tuple[InstanceRef, ...] = ()


@dataclass(frozen=True)
class ActionRequest:
    """A RunApplicationAction whose parameters are well-formed (types and enums checked)."""

    region_id: str
    cluster_id: str
    action_name: str
    selector: Selector
    rolling: bool
    strategy: str
    interval: int
    batch_size: int
    description: str


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    clusters: dict[str, Cluster]
    operations: dict[str, Operation] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scenario: Scenario, now_ms: int) -> World:
        clusters: dict[str, Cluster] = {}
        created = now_ms - 30 * 86_400_000  # a month-old cluster
        for spec in scenario.clusters:
            nodes: dict[str, Node] = {}
            for group in spec.node_groups:
                for n in group.nodes:
                    nodes[n.node_id] = Node(
                        node_id=n.node_id,
                        name=n.name,
                        node_group_id=group.node_group_id,
                        node_group_type=group.type,
                        instance_type=group.instance_type,
                        zone_id=spec.zone_id,
                        private_ip=n.private_ip,
                        create_time=created,
                        state=n.state,
                        abnormal=n.abnormal,
                    )
            instances: dict[InstanceKey, ComponentInstance] = {}
            for comp in spec.components:
                for node_id in comp.node_ids:
                    inst = ComponentInstance(comp.application, comp.component, nodes[node_id], created)
                    instances[inst.key] = inst
            clusters[spec.cluster_id] = Cluster(spec, created, nodes, instances)
        return cls(clusters)

    def cluster(self, region_id: str, cluster_id: str) -> Cluster:
        """The cluster, or ResourceNotFound (also when it lives in another region)."""
        cluster = self.clusters.get(cluster_id)
        if cluster is None or cluster.region_id != region_id:
            raise EmulatorError("ResourceNotFound", f"ClusterId {cluster_id} in region {region_id}")
        return cluster

    def operation(self, cluster: Cluster, operation_id: str) -> Operation:
        op = self.operations.get(operation_id)
        if op is None or op.cluster_id != cluster.cluster_id:
            raise EmulatorError("ResourceNotFound", f"OperationId {operation_id}")
        return op

    def resolve_targets(self, cluster: Cluster, selector: Selector) -> list[ComponentInstance]:
        """The instances a selector names, in layout order; MissingParameter.* / ResourceNotFound."""
        if selector.scope == "APPLICATION":
            if not selector.application:
                raise EmulatorError("MissingParameter.ApplicationName")
            found = [i for i in cluster.instances.values() if i.application == selector.application]
            if not found:
                raise EmulatorError("ResourceNotFound", f"ApplicationName {selector.application}")
            return found
        if selector.scope == "COMPONENT":
            if not selector.components:
                raise EmulatorError("MissingParameter.ComponentName")
            wanted: list[tuple[str, str]] = []
            for ref in selector.components:
                app = ref.application or selector.application
                if not app:
                    raise EmulatorError("MissingParameter.ApplicationName")
                if not ref.component:
                    raise EmulatorError("MissingParameter.ComponentName")
                self._check_component(cluster, app, ref.component)
                wanted.append((app, ref.component))
            return [i for i in cluster.instances.values() if (i.application, i.component) in wanted]
        if not selector.instances:
            raise EmulatorError("MissingParameter.ComponentInstance")
        keys: list[InstanceKey] = []
        for iref in selector.instances:
            app = iref.application or selector.application
            if not app:
                raise EmulatorError("MissingParameter.ApplicationName")
            if not iref.component:
                raise EmulatorError("MissingParameter.ComponentName")
            if not iref.node_id:
                raise EmulatorError("MissingParameter.NodeId")
            self._check_component(cluster, app, iref.component)
            if iref.node_id not in cluster.nodes:
                raise EmulatorError("ResourceNotFound", f"NodeId {iref.node_id}")
            key = (app, iref.component, iref.node_id)
            if key not in cluster.instances:
                raise EmulatorError(
                    "ResourceNotFound", f"ComponentInstance {app}/{iref.component}/{iref.node_id}"
                )
            if key not in keys:
                keys.append(key)
        return [cluster.instances[k] for k in keys]

    @staticmethod
    def _check_component(cluster: Cluster, application: str, component: str) -> None:
        if not any(i.application == application for i in cluster.instances.values()):
            raise EmulatorError("ResourceNotFound", f"ApplicationName {application}")
        if not any(
            (i.application, i.component) == (application, component) for i in cluster.instances.values()
        ):
            raise EmulatorError("ResourceNotFound", f"ComponentName {application}/{component}")

    def conflict(self, cluster_id: str, keys: list[InstanceKey]) -> InstanceKey | None:
        """An instance of ``keys`` that an IN_PROGRESS operation on the cluster already targets."""
        wanted = set(keys)
        for op in self.operations.values():
            if op.cluster_id == cluster_id and op.state == OperationState.IN_PROGRESS:
                for key in op.targets:
                    if key in wanted:
                        return key
        return None

    def create_operation(
        self, request: ActionRequest, targets: list[ComponentInstance], now_ms: int, access_key_id: str
    ) -> Operation:
        keys = [i.key for i in targets]
        size = request.batch_size if request.rolling else max(1, len(keys))
        batches = [Batch(n, keys[start : start + size]) for n, start in enumerate(range(0, len(keys), size))]
        op = Operation(
            operation_id=f"op-{secrets.token_hex(8)}",
            cluster_id=request.cluster_id,
            action_name=request.action_name,
            strategy=request.strategy,
            rolling=request.rolling,
            interval=request.interval,
            batch_size=request.batch_size,
            description=request.description,
            targets=keys,
            batches=batches,
            create_time=now_ms,
            start_time=now_ms,
            access_key_id=access_key_id,
        )
        self.operations[op.operation_id] = op
        return op

    def to_state(self) -> dict[str, Any]:
        return {
            "clusters": [
                {
                    **c.to_api(),
                    "Nodes": [{**n.to_api(), "Abnormal": n.abnormal} for n in c.nodes.values()],
                    "ComponentInstances": [i.to_api() for i in c.instances.values()],
                    "HumanProcessing": c.spec.human_processing,
                }
                for c in self.clusters.values()
            ],
            "operations": [op.to_state() for op in self.operations.values()],
        }
