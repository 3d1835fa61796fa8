"""Scenarios: what the emulator holds when it starts (and after each reset), read from YAML.

A scenario is plain frozen data: clusters with their node groups, nodes and component layout,
access keys (with STS tokens and the clusters each may touch), rate limits, engine timing and
faults. ``docs/emulator.md`` documents the YAML format; ``scenarios/example.yaml`` shows all of it.
With no scenario the emulator serves ``DEMO_CLUSTER``, the cluster every emrops helper agreed on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emrops.acs.codes import TABLE
from emrops.emulator.faults import FaultSpec, parse_fault

NODE_GROUP_TYPES = ("MASTER", "CORE", "TASK", "GATEWAY")
HUMAN_PROCESSING_MODES = ("always", "on_failure")

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
    data = _mapping(raw, "scenario")
    _known(
        data,
        "scenario",
        {
            "clusters",
            "access_keys",
            "include_default_key",
            "rate_limit",
            "engine",
            "validation",
            "faults",
            "faults_seed",
        },
    )
    raw_clusters = data.get("clusters")
    if raw_clusters is None:
        raw_clusters = [DEMO_CLUSTER]
    clusters: list[ClusterSpec] = []
    for index, item in enumerate(_list(raw_clusters, "clusters")):
        clusters.extend(_clusters(item, f"clusters[{index}]"))
    ids = [c.cluster_id for c in clusters]
    if len(set(ids)) != len(ids):
        raise ScenarioError("clusters: duplicate cluster id")

    keys: list[AccessKey] = [DEFAULT_KEY] if data.get("include_default_key", True) else []
    for index, item in enumerate(_list(data.get("access_keys", []), "access_keys")):
        key = _access_key(item, f"access_keys[{index}]")
        keys = [k for k in keys if k.access_key_id != key.access_key_id] + [key]

    faults = []
    for index, item in enumerate(_list(data.get("faults", []), "faults")):
        try:
            faults.append(parse_fault(item))
        except ValueError as exc:
            raise ScenarioError(f"faults[{index}]: {exc}") from exc

    engine = _mapping(data.get("engine", {}), "engine")
    validation = _mapping(data.get("validation", {}), "validation")
    return Scenario(
        clusters=tuple(clusters),
        access_keys=tuple(keys),
        rate_limit=_rate_limit(data["rate_limit"], "rate_limit") if "rate_limit" in data else RateLimit(),
        engine=EngineSettings(step_seconds=_number(engine.get("step_seconds", 2.0), "engine.step_seconds")),
        validation=ValidationSettings(
            rolling_params_need_rolling_execute=bool(
                validation.get("rolling_params_need_rolling_execute", True)
            )
        ),
        faults=tuple(faults),
        faults_seed=int(data.get("faults_seed", 0)),
    )


def with_access_keys(scenario: Scenario, keys: tuple[AccessKey, ...]) -> Scenario:
    """The scenario plus ``keys`` (a key given again replaces the scenario's)."""
    ids = {k.access_key_id for k in keys}
    kept = tuple(k for k in scenario.access_keys if k.access_key_id not in ids)
    return Scenario(
        clusters=scenario.clusters,
        access_keys=kept + keys,
        rate_limit=scenario.rate_limit,
        engine=scenario.engine,
        validation=scenario.validation,
        faults=scenario.faults,
        faults_seed=scenario.faults_seed,
    )


# --- parts ------------------------------------------------------------------------------------


def _clusters(raw: Any, where: str) -> list[ClusterSpec]:
    data = _mapping(raw, where)
    if "generate" not in data:
        return [_cluster(data, where)]
    gen = _mapping(data["generate"], f"{where}.generate")
    _known(gen, f"{where}.generate", {"count", "prefix", "start", "width"})
    count = int(gen.get("count", 1))
    prefix = str(gen.get("prefix", "c-load"))
    start = int(gen.get("start", 1))
    width = int(gen.get("width", 4))
    template = {k: v for k, v in data.items() if k != "generate"}
    base = copy.deepcopy(DEMO_CLUSTER)
    base.update(template)
    out = []
    for number in range(start, start + count):
        item = dict(base)
        item["id"] = f"{prefix}{number:0{width}d}"
        item["name"] = f"{base.get('name', 'cluster')}-{number:0{width}d}"
        out.append(_cluster(item, f"{where} (generated #{number})"))
    return out


def _cluster(data: Mapping[str, Any], where: str) -> ClusterSpec:
    _known(
        data,
        where,
        {
            "id",
            "name",
            "region",
            "type",
            "zone",
            "release",
            "state",
            "node_groups",
            "applications",
            "abnormal_nodes",
            "human_processing",
        },
    )
    if "id" not in data:
        raise ScenarioError(f"{where}.id: required")
    zone = str(data.get("zone", "cn-hangzhou-i"))
    abnormal = {str(n) for n in _list(data.get("abnormal_nodes", []), f"{where}.abnormal_nodes")}
    groups: list[NodeGroupSpec] = []
    ip = 10
    for g_index, raw_group in enumerate(_list(data.get("node_groups", []), f"{where}.node_groups")):
        g_where = f"{where}.node_groups[{g_index}]"
        group = _mapping(raw_group, g_where)
        _known(group, g_where, {"id", "name", "type", "instance_type", "nodes"})
        g_type = str(group.get("type", "CORE")).upper()
        if g_type not in NODE_GROUP_TYPES:
            raise ScenarioError(f"{g_where}.type: one of {', '.join(NODE_GROUP_TYPES)}")
        raw_nodes = group.get("nodes", [])
        if isinstance(raw_nodes, int):
            ordinal = 1 + sum(1 for g in groups if g.type == g_type)  # EMR names: core1-1, core2-1, ...
            prefix = f"{g_type.lower()}{ordinal}"
            raw_nodes = [
                {"id": f"i-{data['id']}-{prefix}-{i}", "name": f"{prefix}-{i}"}
                for i in range(1, raw_nodes + 1)
            ]
        nodes = []
        for n_index, raw_node in enumerate(_list(raw_nodes, f"{g_where}.nodes")):
            n_where = f"{g_where}.nodes[{n_index}]"
            node = _mapping(raw_node, n_where)
            _known(node, n_where, {"id", "name", "abnormal", "state", "private_ip"})
            if "id" not in node or "name" not in node:
                raise ScenarioError(f"{n_where}: id and name are required")
            node_id, name = str(node["id"]), str(node["name"])
            ip += 1
            nodes.append(
                NodeSpec(
                    node_id=node_id,
                    name=name,
                    abnormal=bool(node.get("abnormal", False)) or node_id in abnormal or name in abnormal,
                    state=str(node.get("state", "Running")),
                    private_ip=str(node.get("private_ip", f"192.168.{ip // 250}.{ip % 250}")),
                )
            )
        groups.append(
            NodeGroupSpec(
                node_group_id=str(group.get("id", f"ng-{data['id']}-{g_index + 1}")),
                name=str(group.get("name", f"emr-{g_type.lower()}-{g_index + 1}")),
                type=g_type,
                instance_type=str(group.get("instance_type", "ecs.g7.xlarge")),
                nodes=tuple(nodes),
            )
        )
    all_nodes = [n for g in groups for n in g.nodes]
    known_refs = {n.node_id for n in all_nodes} | {n.name for n in all_nodes}
    for ref in abnormal - known_refs:
        raise ScenarioError(f"{where}.abnormal_nodes: unknown node {ref!r}")

    components: list[ComponentSpec] = []
    apps = _mapping(data.get("applications", {}), f"{where}.applications")
    for app_name, raw_components in apps.items():
        comps = _mapping(raw_components, f"{where}.applications.{app_name}")
        for comp_name, refs in comps.items():
            c_where = f"{where}.applications.{app_name}.{comp_name}"
            node_ids = _expand_nodes(groups, _list(refs, c_where), c_where)
            components.append(ComponentSpec(str(app_name), str(comp_name), node_ids))

    human = data.get("human_processing")
    if human is True:
        human = "always"
    if human not in (None, False, *HUMAN_PROCESSING_MODES):
        raise ScenarioError(f"{where}.human_processing: one of always, on_failure")
    return ClusterSpec(
        cluster_id=str(data["id"]),
        name=str(data.get("name", data["id"])),
        region_id=str(data.get("region", "cn-hangzhou")),
        cluster_type=str(data.get("type", "DATALAKE")),
        zone_id=zone,
        release_version=str(data.get("release", "EMR-5.16.0")),
        node_groups=tuple(groups),
        components=tuple(components),
        state=str(data.get("state", "RUNNING")),
        human_processing=str(human) if human else None,
    )


def _expand_nodes(groups: list[NodeGroupSpec], refs: list[Any], where: str) -> tuple[str, ...]:
    """Node refs: a node id or name, a node group id or name, or a node group type."""
    out: list[str] = []
    for ref in map(str, refs):
        matched = [n.node_id for g in groups if ref in (g.node_group_id, g.name, g.type) for n in g.nodes]
        matched += [n.node_id for g in groups for n in g.nodes if ref in (n.node_id, n.name)]
        if not matched:
            raise ScenarioError(f"{where}: unknown node or node group {ref!r}")
        out.extend(node_id for node_id in matched if node_id not in out)
    return tuple(out)


def _access_key(raw: Any, where: str) -> AccessKey:
    data = _mapping(raw, where)
    _known(data, where, {"id", "secret", "security_token", "clusters", "rate_limit", "expired"})
    if "id" not in data or "secret" not in data:
        raise ScenarioError(f"{where}: id and secret are required")
    clusters = data.get("clusters")
    return AccessKey(
        access_key_id=str(data["id"]),
        secret=str(data["secret"]),
        security_token=str(data["security_token"]) if data.get("security_token") else None,
        clusters=None
        if clusters in (None, "*")
        else frozenset(map(str, _list(clusters, f"{where}.clusters"))),
        rate_limit=_rate_limit(data["rate_limit"], f"{where}.rate_limit") if "rate_limit" in data else None,
        expired=bool(data.get("expired", False)),
    )


def _rate_limit(raw: Any, where: str) -> RateLimit:
    data = _mapping(raw, where)
    _known(data, where, {"qps", "burst", "code"})
    code = str(data.get("code", "ThrottlingException"))
    if code not in TABLE or not TABLE[code].throttling:
        raise ScenarioError(f"{where}.code: not a throttling code of the error table")
    qps = _number(data.get("qps", 100.0), f"{where}.qps")
    burst = int(data.get("burst", max(1, round(qps * 2))))
    if qps <= 0 or burst < 1:
        raise ScenarioError(f"{where}: qps must be > 0 and burst >= 1")
    return RateLimit(qps=qps, burst=burst, code=code)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: expected a mapping")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: expected a list")
    return raw


def _number(raw: Any, where: str) -> float:
    try:
        return float(raw)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: expected a number") from exc


def _known(data: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = set(map(str, data)) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
