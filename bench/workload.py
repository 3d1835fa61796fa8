"""The benchmark's world: an emulator scenario of N clusters and the actions run against them.

Every action restarts one component instance. Each generated cluster has the demo layout, which
holds ten restartable instances that never overlap (NodeManager on six nodes, DataNode on four),
so up to ten actions per cluster run at the same time without EMR answering
ConcurrentModification: the burst measures emrops, not the emulator's conflict rules.
"""

from __future__ import annotations

from typing import Any

from bench.baseline import Target

CLUSTER_PREFIX = "c-bench"
CORES = [f"i-bp1emrdemo000core{i}" for i in range(1, 5)]
TASKS = [f"i-bp1emrdemo000task{i}" for i in range(1, 3)]
#: (application, component, node) triples of one demo-layout cluster that never overlap.
INSTANCES: list[tuple[str, str, str]] = [("YARN", "NodeManager", n) for n in CORES + TASKS] + [
    ("HDFS", "DataNode", n) for n in CORES
]


def cluster_id(index: int) -> str:
    return f"{CLUSTER_PREFIX}{index + 1:04d}"


def scenario(clusters: int, *, step_seconds: float) -> dict[str, Any]:
    """``clusters`` copies of the demo cluster; the emulator's rate limit is out of the way."""
    return {
        "clusters": [{"generate": {"count": clusters, "prefix": CLUSTER_PREFIX, "start": 1, "width": 4}}],
        # Throttling is measured by the fault suite; here it would only add noise.
        "rate_limit": {"qps": 1_000_000, "burst": 1_000_000},
        "engine": {"step_seconds": step_seconds},
    }


def targets(count: int, clusters: int, *, prefix: str) -> list[Target]:
    """``count`` actions spread round-robin over ``clusters``; at most ten per cluster overlap-free."""
    if count > clusters * len(INSTANCES):
        raise ValueError(f"{count} actions need more than {clusters} clusters")
    out = []
    for i in range(count):
        app, component, node = INSTANCES[(i // clusters) % len(INSTANCES)]
        out.append(Target(cluster_id(i % clusters), app, component, node, description=f"{prefix}-{i:05d}"))
    return out


def manifest(target: Target) -> dict[str, Any]:
    """The ServiceAction for ``target``; its name is its description (that is how calls are matched)."""
    return {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": target.description},
        "spec": target.spec(),
    }


def warmup(prefix: str) -> Target:
    """One action on the first cluster's last instance, which the timed phases never touch first."""
    app, component, node = INSTANCES[-1]
    return Target(cluster_id(0), app, component, node, description=f"{prefix}-warmup")
