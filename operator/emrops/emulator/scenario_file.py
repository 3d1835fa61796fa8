"""The scenario file's format: pydantic models of its YAML/JSON, field for field.

These check what one field can say on its own: types (booleans are booleans: ``"no"`` is not
false, it is an error), ranges, enums, unknown fields (``extra="forbid"`` everywhere). What
needs several fields (node references, duplicate ids, defaults derived from a cluster's id) is
checked by ``emrops.emulator.scenario`` while it builds the frozen scenario from these models.
``docs/emulator.md`` documents the format; ``scenarios/example.yaml`` shows all of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from emrops.acs.codes import TABLE

NodeGroupType = Literal["MASTER", "CORE", "TASK", "GATEWAY"]
HumanProcessing = Literal["always", "on_failure"]

#: A number that must not be a boolean (YAML's ``yes`` would otherwise count as 1).
Number = Annotated[float, Field(strict=True)]


class _Strict(BaseModel):
    # Names and ids written as numbers in YAML (``name: 2024``) are still names.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _human_processing(value: Any) -> Any:
    """``true`` is ``always``; ``false`` is off, as no value is."""
    if value is True:
        return "always"
    return None if value is False else value


def _every_cluster(value: Any) -> Any:
    return None if value == "*" else value


class RateLimitFile(_Strict):
    qps: Number = Field(default=100.0, gt=0)
    #: Default: twice ``qps`` (at least 1).
    burst: StrictInt | None = Field(default=None, ge=1)
    code: str = "ThrottlingException"

    @field_validator("code")
    @classmethod
    def _throttling_code(cls, code: str) -> str:
        row = TABLE.get(code)
        if row is None or not row.throttling:
            raise PydanticCustomError(
                "throttling_code", "'{code}' is not a throttling code of the error table", {"code": code}
            )
        return code

    @property
    def bucket(self) -> int:
        return self.burst if self.burst is not None else max(1, round(self.qps * 2))


class AccessKeyFile(_Strict):
    id: str
    secret: str = Field(repr=False)
    security_token: str | None = Field(default=None, repr=False)
    #: Cluster ids this key may act on; ``"*"`` or absent: every cluster.
    clusters: Annotated[list[str] | None, BeforeValidator(_every_cluster)] = None
    rate_limit: RateLimitFile | None = None
    expired: StrictBool = False


class NodeFile(_Strict):
    id: str
    name: str
    abnormal: StrictBool = False
    state: str = "Running"
    #: Default: the next address of the cluster's 192.168.x.y sequence.
    private_ip: str | None = None


class NodeGroupFile(_Strict):
    id: str | None = None
    name: str | None = None
    type: Annotated[NodeGroupType, BeforeValidator(_upper)] = "CORE"
    instance_type: str = "ecs.g7.xlarge"
    #: A count in the file becomes generated nodes (``ClusterFile._count_to_nodes``).
    nodes: list[NodeFile] = []

    @field_validator("nodes", mode="before")
    @classmethod
    def _not_a_count(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):  # a negative one: left for here
            raise PydanticCustomError(
                "node_count", "a count of nodes must be >= 0, got {count}", {"count": value}
            )
        return value


class ClusterFile(_Strict):
    id: str
    name: str | None = None
    region: str = "cn-hangzhou"
    type: str = "DATALAKE"
    zone: str = "cn-hangzhou-i"
    release: str = "EMR-5.16.0"
    state: str = "RUNNING"
    node_groups: list[NodeGroupFile] = []
    #: Node ids or names.
    abnormal_nodes: list[str] = []
    #: ``{Application: {Component: [node refs]}}``.
    applications: dict[str, dict[str, list[str]]] = {}
    human_processing: Annotated[HumanProcessing | None, BeforeValidator(_human_processing)] = None

    @model_validator(mode="before")
    @classmethod
    def _count_to_nodes(cls, data: Any) -> Any:
        """``nodes: 3`` becomes three nodes named as EMR names them: core1-1, core1-2, ...

        The name's ordinal counts the node groups of that type so far (core1-*, then core2-*)
        and the id is made from the cluster's, so both are known only here, at the cluster.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("node_groups"), list):
            return data
        seen: Counter[str] = Counter()
        groups = []
        for group in data["node_groups"]:
            if isinstance(group, Mapping) and isinstance(group.get("type", "CORE"), str):
                group_type = str(group.get("type", "CORE")).upper()
                seen[group_type] += 1
                count = group.get("nodes")
                if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                    group = {**group, "nodes": _counted(data.get("id"), group_type, seen[group_type], count)}
            groups.append(group)
        return {**data, "node_groups": groups}


def _counted(cluster_id: Any, group_type: str, ordinal: int, count: int) -> list[dict[str, str]]:
    prefix = f"{group_type.lower()}{ordinal}"
    return [{"id": f"i-{cluster_id}-{prefix}-{i}", "name": f"{prefix}-{i}"} for i in range(1, count + 1)]


class GenerateFile(_Strict):
    """``{generate: {...}, <cluster fields>}``: ``count`` clusters ``prefix0001``... ."""

    count: StrictInt = Field(default=1, ge=0)
    prefix: str = "c-load"
    start: StrictInt = Field(default=1, ge=0)
    width: StrictInt = Field(default=4, ge=1, le=32)


class EngineFile(_Strict):
    #: Seconds (before time scaling) each state change of an instance takes; 0: at once.
    step_seconds: Number = Field(default=2.0, ge=0)


class ValidationFile(_Strict):
    rolling_params_need_rolling_execute: StrictBool = True


class ScenarioFile(_Strict):
    """The top level. ``clusters`` items stay raw here: each is a cluster or a generator, and
    ``emrops.emulator.scenario`` validates them one by one so an error names the right one."""

    clusters: list[Any] | None = None
    access_keys: list[AccessKeyFile] = []
    include_default_key: StrictBool = True
    rate_limit: RateLimitFile = RateLimitFile()
    engine: EngineFile = EngineFile()
    validation: ValidationFile = ValidationFile()
    #: Fault rules, validated by ``emrops.emulator.faults.parse_fault`` (shared with the HTTP API).
    faults: list[Any] = []
    faults_seed: StrictInt = 0
