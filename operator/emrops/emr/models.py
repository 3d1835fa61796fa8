"""Typed requests and responses of the EMR APIs emrops uses.

Field names are Python-style; ``alias`` is the API's name. ``to_params()`` turns a request into
the nested dict that ``emrops.acs.flatten`` flattens onto the query string (None fields omitted),
and ``Model.model_validate(body)`` reads a response (unknown fields ignored, as the SDK does).
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    def to_params(self) -> dict[str, Any]:
        """API-named, None-free nested dict of this request (the SDK's ``to_map``)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ActionName(enum.StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    CONFIG = "config"
    REFRESH_QUEUES = "refresh_queues"
    REFRESH_LABELS = "refresh_labels"


class RunActionScope(enum.StrEnum):
    APPLICATION = "APPLICATION"
    COMPONENT = "COMPONENT"
    COMPONENT_INSTANCE = "COMPONENT_INSTANCE"


class ExecuteStrategy(enum.StrEnum):
    FAILED_BLOCK = "FAILED_BLOCK"
    FAILED_CONTINUE = "FAILED_CONTINUE"


class OperationState(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    HUMAN_PROCESSING = "HUMAN_PROCESSING"
    FAILED = "FAILED"


# --- RunApplicationAction -------------------------------------------------------------------


class ComponentRef(_Model):
    application_name: str = Field(alias="ApplicationName")
    component_name: str = Field(alias="ComponentName")


class ComponentInstanceRef(_Model):
    application_name: str = Field(alias="ApplicationName")
    component_name: str = Field(alias="ComponentName")
    node_id: str = Field(alias="NodeId")


class ComponentInstanceSelector(_Model):
    run_action_scope: RunActionScope = Field(alias="RunActionScope")
    application_name: str | None = Field(default=None, alias="ApplicationName")
    components: list[ComponentRef] | None = Field(default=None, alias="Components")
    component_instances: list[ComponentInstanceRef] | None = Field(default=None, alias="ComponentInstances")


class RunApplicationActionRequest(_Model):
    region_id: str = Field(alias="RegionId")
    cluster_id: str = Field(alias="ClusterId")
    action_name: ActionName = Field(alias="ActionName")
    component_instance_selector: ComponentInstanceSelector = Field(alias="ComponentInstanceSelector")
    rolling_execute: bool | None = Field(default=None, alias="RollingExecute")
    execute_strategy: ExecuteStrategy | None = Field(default=None, alias="ExecuteStrategy")
    interval: int | None = Field(default=None, alias="Interval")
    batch_size: int | None = Field(default=None, alias="BatchSize")
    description: str | None = Field(default=None, alias="Description")


class AbnInstance(_Model):
    node_id: str = Field(default="", alias="NodeId")
    node_name: str = Field(default="", alias="NodeName")


class RunApplicationActionResponse(_Model):
    request_id: str = Field(default="", alias="RequestId")
    operation_id: str = Field(alias="OperationId")
    abn_instances: list[AbnInstance] = Field(default_factory=list, alias="AbnInstances")


# --- GetOperation ---------------------------------------------------------------------------


class StateChangeReason(_Model):
    code: str | None = Field(default=None, alias="Code")
    message: str | None = Field(default=None, alias="Message")


class Operation(_Model):
    operation_id: str = Field(alias="OperationId")
    cluster_id: str | None = Field(default=None, alias="ClusterId")
    operation_state: OperationState = Field(alias="OperationState")
    operation_type: str | None = Field(default=None, alias="OperationType")
    description: str | None = Field(default=None, alias="Description")
    create_time: int | None = Field(default=None, alias="CreateTime")  # Unix ms
    start_time: int | None = Field(default=None, alias="StartTime")
    end_time: int | None = Field(default=None, alias="EndTime")
    state_change_reason: StateChangeReason | None = Field(default=None, alias="StateChangeReason")


class GetOperationRequest(_Model):
    region_id: str = Field(alias="RegionId")
    cluster_id: str = Field(alias="ClusterId")
    operation_id: str = Field(alias="OperationId")


class GetOperationResponse(_Model):
    request_id: str = Field(default="", alias="RequestId")
    operation: Operation = Field(alias="Operation")


# --- Read APIs (paged) ----------------------------------------------------------------------


class _PagedRequest(_Model):
    region_id: str = Field(alias="RegionId")
    max_results: int | None = Field(default=None, alias="MaxResults")
    next_token: str | None = Field(default=None, alias="NextToken")


class _PagedResponse(_Model):
    request_id: str = Field(default="", alias="RequestId")
    next_token: str | None = Field(default=None, alias="NextToken")
    max_results: int | None = Field(default=None, alias="MaxResults")
    total_count: int | None = Field(default=None, alias="TotalCount")


class ClusterSummary(_Model):
    cluster_id: str = Field(alias="ClusterId")
    cluster_name: str | None = Field(default=None, alias="ClusterName")
    cluster_type: str | None = Field(default=None, alias="ClusterType")
    cluster_state: str | None = Field(default=None, alias="ClusterState")
    region_id: str | None = Field(default=None, alias="RegionId")
    release_version: str | None = Field(default=None, alias="ReleaseVersion")
    create_time: int | None = Field(default=None, alias="CreateTime")


class ListClustersRequest(_PagedRequest):
    cluster_ids: list[str] | None = Field(default=None, alias="ClusterIds")
    cluster_states: list[str] | None = Field(default=None, alias="ClusterStates")


class ListClustersResponse(_PagedResponse):
    clusters: list[ClusterSummary] = Field(default_factory=list, alias="Clusters")


class Cluster(ClusterSummary):
    deploy_mode: str | None = Field(default=None, alias="DeployMode")
    security_mode: str | None = Field(default=None, alias="SecurityMode")
    payment_type: str | None = Field(default=None, alias="PaymentType")
    description: str | None = Field(default=None, alias="Description")


class GetClusterRequest(_Model):
    region_id: str = Field(alias="RegionId")
    cluster_id: str = Field(alias="ClusterId")


class GetClusterResponse(_Model):
    request_id: str = Field(default="", alias="RequestId")
    cluster: Cluster = Field(alias="Cluster")


class Node(_Model):
    node_id: str = Field(alias="NodeId")
    node_name: str | None = Field(default=None, alias="NodeName")
    node_group_id: str | None = Field(default=None, alias="NodeGroupId")
    node_group_type: str | None = Field(default=None, alias="NodeGroupType")
    node_state: str | None = Field(default=None, alias="NodeState")
    instance_type: str | None = Field(default=None, alias="InstanceType")
    private_ip: str | None = Field(default=None, alias="PrivateIp")
    zone_id: str | None = Field(default=None, alias="ZoneId")


class ListNodesRequest(_PagedRequest):
    cluster_id: str = Field(alias="ClusterId")
    node_ids: list[str] | None = Field(default=None, alias="NodeIds")
    node_names: list[str] | None = Field(default=None, alias="NodeNames")
    node_group_ids: list[str] | None = Field(default=None, alias="NodeGroupIds")
    node_states: list[str] | None = Field(default=None, alias="NodeStates")


class ListNodesResponse(_PagedResponse):
    nodes: list[Node] = Field(default_factory=list, alias="Nodes")


class ComponentInstance(_Model):
    application_name: str = Field(alias="ApplicationName")
    component_name: str = Field(alias="ComponentName")
    node_id: str = Field(alias="NodeId")
    node_name: str | None = Field(default=None, alias="NodeName")
    zone_id: str | None = Field(default=None, alias="ZoneId")
    component_instance_state: str | None = Field(default=None, alias="ComponentInstanceState")
    desired_state: str | None = Field(default=None, alias="DesiredState")
    biz_state: str | None = Field(default=None, alias="BizState")
    commission_state: str | None = Field(default=None, alias="CommissionState")
    create_time: int | None = Field(default=None, alias="CreateTime")


class ListComponentInstancesRequest(_PagedRequest):
    cluster_id: str = Field(alias="ClusterId")
    application_names: list[str] | None = Field(default=None, alias="ApplicationNames")
    component_names: list[str] | None = Field(default=None, alias="ComponentNames")
    component_states: list[str] | None = Field(default=None, alias="ComponentStates")
    node_ids: list[str] | None = Field(default=None, alias="NodeIds")
    node_names: list[str] | None = Field(default=None, alias="NodeNames")


class ListComponentInstancesResponse(_PagedResponse):
    component_instances: list[ComponentInstance] = Field(default_factory=list, alias="ComponentInstances")
