"""Scenarios: what the emulator holds when it starts (and after each reset), read from YAML.

A scenario is plain frozen data: clusters with their node groups, nodes and component layout,
access keys (with STS tokens and the clusters each may touch), rate limits, engine timing and
faults. ``docs/emulator.md`` documents the YAML format; ``scenarios/example.yaml`` shows all of it.
With no scenario the emulator serves ``DEMO_CLUSTER``, the cluster every emrops helper agreed on.

Reading a file takes two steps: the pydantic models of ``scenario_file`` check each field (types,
ranges, unknown fields), then this module builds the frozen scenario and checks what spans
fields (node references, duplicate cluster ids) and fills defaults derived from other fields.
Either way an error is a ``ScenarioError`` that names its path, such as
``clusters[2].node_groups[0].nodes: ...``.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml
from pydantic_core import ErrorDetails

from emrops.emulator.faults import FaultSpec, parse_fault
from emrops.emulator.scenario_file import (
    AccessKeyFile,
    ClusterFile,
    GenerateFile,
    RateLimitFile,
    ScenarioFile,
)

M = TypeVar("M", bound=pydantic.BaseModel)

DEFAULT_ACCESS_KEY_ID = "emrops-demo"
DEFAULT_ACCESS_KEY_SECRET = "emrops-demo-secret"  # noqa: S105 - the documented demo key, not a secret

#: The default demo cluster (docs/emulator.md), in the scenario file's own format.
DEMO_CLUSTER: dict[str, Any] = {
    "id": "c-8a3f2e1d9b7c6a50",
    "name": "emrops-demo",
    "region": "cn-hangzhou",
    "type": "DATALAKE",
    "zone": "cn-hangzhou-i",
    "release": "EMR-5.16.0",
    "node_groups": [
        {
            "id": "ng-emrdemo0master1",
            "name": "emr-master",
            "type": "MASTER",
            "instance_type": "ecs.g7.2xlarge",
            "nodes": [{"id": "i-bp1emrdemo00master1", "name": "master1-1"}],
        },
        {
            "id": "ng-emrdemo000core1",
            "name": "emr-core",
            "type": "CORE",
            "instance_type": "ecs.g7.xlarge",
            "nodes": [{"id": f"i-bp1emrdemo000core{i}", "name": f"core1-{i}"} for i in range(1, 5)],
        },
        {
            "id": "ng-emrdemo000task1",
            "name": "emr-task",
            "type": "TASK",
            "instance_type": "ecs.g7.xlarge",
            "nodes": [{"id": f"i-bp1emrdemo000task{i}", "name": f"task1-{i}"} for i in range(1, 3)],
        },
    ],
    "applications": {
        "HDFS": {"NameNode": ["MASTER"], "DataNode": ["CORE"]},
        "YARN": {"ResourceManager": ["MASTER"], "NodeManager": ["CORE", "TASK"]},
        "HIVE": {"HiveMetastore": ["MASTER"], "HiveServer2": ["MASTER"]},
        "SPARK": {"SparkHistoryServer": ["MASTER"]},
        "ZOOKEEPER": {"ZooKeeper": ["master1-1", "core1-1", "core1-2"]},
    },
}


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the offending path."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``qps`` tokens per (time-scaled) second, at most ``burst`` stored."""

    qps: float = 100.0
    burst: int = 200
    code: str = "ThrottlingException"


@dataclass(frozen=True)
class AccessKey:
    """An access key the gateway accepts; secrets and tokens stay out of reprs."""

    access_key_id: str
    secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    #: Cluster ids this key may act on; None means every cluster.
    clusters: frozenset[str] | None = None
    rate_limit: RateLimit | None = None
    #: An STS key whose token has expired: every call is refused.
    expired: bool = False


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    name: str
    abnormal: bool = False
    state: str = "Running"
    private_ip: str = ""


@dataclass(frozen=True)
class NodeGroupSpec:
    node_group_id: str
    name: str
    type: str
    instance_type: str
    nodes: tuple[NodeSpec, ...]


@dataclass(frozen=True)
class ComponentSpec:
    application: str
    component: str
    node_ids: tuple[str, ...]


@dataclass(frozen=True)
class ClusterSpec:
    cluster_id: str
    name: str
    region_id: str
    cluster_type: str
    zone_id: str
    release_version: str
    node_groups: tuple[NodeGroupSpec, ...]
    components: tuple[ComponentSpec, ...]
    state: str = "RUNNING"
    #: None, "always" (every operation ends HUMAN_PROCESSING) or "on_failure" (instead of FAILED).
    human_processing: str | None = None


@dataclass(frozen=True)
class EngineSettings:
    #: Seconds (before time scaling) each state change of an instance takes.
    step_seconds: float = 2.0


@dataclass(frozen=True)
class ValidationSettings:
    #: BatchSize or Interval without RollingExecute=true is ConflictParameters (a guess; see docs).
    rolling_params_need_rolling_execute: bool = True


@dataclass(frozen=True)
class Scenario:
    clusters: tuple[ClusterSpec, ...]
    access_keys: tuple[AccessKey, ...]
    rate_limit: RateLimit = RateLimit()
    engine: EngineSettings = EngineSettings()
    validation: ValidationSettings = ValidationSettings()
    faults: tuple[FaultSpec, ...] = ()
    faults_seed: int = 0


DEFAULT_KEY = AccessKey(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


def default_scenario() -> Scenario:
    """The demo cluster and the demo key: what ``emrops emulator`` serves without ``--scenario``."""
    return parse_scenario({})


def load_scenario(path: str | Path) -> Scenario:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    return parse_scenario(raw if raw is not None else {})


def parse_scenario(raw: Any) -> Scenario:
    """Build a scenario from its YAML/JSON data; raises ``ScenarioError`` naming the bad path."""
    if not isinstance(raw, Mapping):
        raise ScenarioError("scenario: expected a mapping")
    data = _validated(ScenarioFile, raw, "")
    clusters = _clusters(data.clusters if data.clusters is not None else [DEMO_CLUSTER])
    keys: list[AccessKey] = [DEFAULT_KEY] if data.include_default_key else []
    for key in map(_access_key, data.access_keys):
        keys = [k for k in keys if k.access_key_id != key.access_key_id] + [key]
    return Scenario(
        clusters=clusters,
        access_keys=tuple(keys),
        rate_limit=_rate_limit(data.rate_limit),
        engine=EngineSettings(step_seconds=data.engine.step_seconds),
        validation=ValidationSettings(
            rolling_params_need_rolling_execute=data.validation.rolling_params_need_rolling_execute
        ),
        faults=tuple(_fault(item, f"faults[{index}]") for index, item in enumerate(data.faults)),
        faults_seed=data.faults_seed,
    )


def with_access_keys(scenario: Scenario, keys: tuple[AccessKey, ...]) -> Scenario:
    """The scenario plus ``keys`` (a key given again replaces the scenario's)."""
    ids = {k.access_key_id for k in keys}
    kept = tuple(k for k in scenario.access_keys if k.access_key_id not in ids)
    return replace(scenario, access_keys=kept + keys)


# --- building the frozen scenario from the file's models ---------------------------------


def _validated(model: type[M], raw: Any, where: str) -> M:
    """``model`` validated from ``raw``; its errors become one ``ScenarioError`` naming paths."""
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ScenarioError("; ".join(_describe(where, error) for error in exc.errors())) from None


def _describe(where: str, error: ErrorDetails) -> str:
    """``clusters[2].node_groups[0].nodes: <what is wrong>``."""
    path = where
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = _MESSAGES.get(error["type"], error["msg"])
    return f"{path or 'scenario'}: {message}"


#: Pydantic's messages where a shorter one says it better.
_MESSAGES = {"missing": "required", "extra_forbidden": "unknown field"}


def _clusters(items: list[Any]) -> tuple[ClusterSpec, ...]:
    clusters: list[ClusterSpec] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"clusters[{index}]"
        for spec, spec_where in _cluster_items(item, where):
            first = seen.get(spec.cluster_id)
            if first is not None:
                raise ScenarioError(
                    f"{spec_where}.id: duplicate cluster id {spec.cluster_id!r} (also {first})"
                )
            seen[spec.cluster_id] = spec_where
            clusters.append(spec)
    return tuple(clusters)


def _cluster_items(item: Any, where: str) -> list[tuple[ClusterSpec, str]]:
    """One cluster, or the clusters a ``generate`` item makes (each with where it came from)."""
    if not isinstance(item, Mapping):
        raise ScenarioError(f"{where}: expected a mapping")
    if "generate" not in item:
        return [(_cluster(_validated(ClusterFile, item, where), where), where)]
    gen = _validated(GenerateFile, item["generate"], f"{where}.generate")
    base = {**copy.deepcopy(DEMO_CLUSTER), **{k: v for k, v in item.items() if k != "generate"}}
    out = []
    for number in range(gen.start, gen.start + gen.count):
        suffix = f"{number:0{gen.width}d}"
        generated = {**base, "id": f"{gen.prefix}{suffix}", "name": f"{base.get('name', 'cluster')}-{suffix}"}
        at = f"{where} (generated #{number})"
        out.append((_cluster(_validated(ClusterFile, generated, at), at), at))
    return out


def _cluster(data: ClusterFile, where: str) -> ClusterSpec:
    groups = _node_groups(data)
    by_ref = {ref: n.node_id for g in groups for n in g.nodes for ref in (n.node_id, n.name)}
    for ref in data.abnormal_nodes:
        if ref not in by_ref:
            raise ScenarioError(f"{where}.abnormal_nodes: unknown node {ref!r}")
    abnormal = {by_ref[ref] for ref in data.abnormal_nodes}
    groups = [
        replace(g, nodes=tuple(replace(n, abnormal=n.abnormal or n.node_id in abnormal) for n in g.nodes))
        for g in groups
    ]
    components = [
        ComponentSpec(app, component, _expand_nodes(groups, refs, f"{where}.applications.{app}.{component}"))
        for app, layout in data.applications.items()
        for component, refs in layout.items()
    ]
    return ClusterSpec(
        cluster_id=data.id,
        name=data.name if data.name is not None else data.id,
        region_id=data.region,
        cluster_type=data.type,
        zone_id=data.zone,
        release_version=data.release,
        node_groups=tuple(groups),
        components=tuple(components),
        state=data.state,
        human_processing=data.human_processing,
    )


def _node_groups(data: ClusterFile) -> list[NodeGroupSpec]:
    """The groups with their defaults: ids from the cluster's, private IPs in one sequence."""
    # Every node takes the next address, also one that names its own: adding an address to one
    # node leaves the others' as they were.
    addresses = (f"192.168.{ip // 250}.{ip % 250}" for ip in itertools.count(11))
    groups = []
    for index, group in enumerate(data.node_groups):
        nodes = []
        for node, address in zip(group.nodes, addresses, strict=False):
            ip = address if node.private_ip is None else node.private_ip
            nodes.append(NodeSpec(node.id, node.name, node.abnormal, node.state, ip))
        groups.append(
            NodeGroupSpec(
                node_group_id=group.id if group.id is not None else f"ng-{data.id}-{index + 1}",
                name=group.name if group.name is not None else f"emr-{group.type.lower()}-{index + 1}",
                type=group.type,
                instance_type=group.instance_type,
                nodes=tuple(nodes),
            )
        )
    return groups


def _expand_nodes(groups: list[NodeGroupSpec], refs: list[str], where: str) -> tuple[str, ...]:
    """Node refs: a node id or name, a node group id or name, or a node group type."""
    out: list[str] = []
    for ref in refs:
        matched = [n.node_id for g in groups if ref in (g.node_group_id, g.name, g.type) for n in g.nodes]
        matched += [n.node_id for g in groups for n in g.nodes if ref in (n.node_id, n.name)]
        if not matched:
            raise ScenarioError(f"{where}: unknown node or node group {ref!r}")
        out.extend(node_id for node_id in matched if node_id not in out)
    return tuple(out)


def _access_key(data: AccessKeyFile) -> AccessKey:
    return AccessKey(
        access_key_id=data.id,
        secret=data.secret,
        security_token=data.security_token or None,
        clusters=frozenset(data.clusters) if data.clusters is not None else None,
        rate_limit=_rate_limit(data.rate_limit) if data.rate_limit is not None else None,
        expired=data.expired,
    )


def _rate_limit(data: RateLimitFile) -> RateLimit:
    return RateLimit(qps=data.qps, burst=data.bucket, code=data.code)


def _fault(raw: Any, where: str) -> FaultSpec:
    try:
        return parse_fault(raw)
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from exc
