"""The benchmark's world: an emulator scenario of N clusters and the actions run against them.

Every action restarts one component instance. Each generated cluster has the demo layout, which
holds ten restartable instances that never overlap (NodeManager on six nodes, DataNode on four),
so up to ten actions per cluster run at the same time without EMR answering
ConcurrentModification: the burst measures emrops, not the emulator's conflict rules.
"""

from __future__ import annotations

from typing import Any

from bench.baseline import Target
from harness.emulator import clusters_scenario as scenario
from harness.emulator import generated_cluster_id as cluster_id
from harness.objects import DISJOINT_INSTANCES as INSTANCES
from harness.objects import service_action

# The scenario (harness.emulator.clusters_scenario) keeps the emulator's rate limit out of the way:
# throttling is measured by the fault suite; here it would only add noise.
__all__ = ["INSTANCES", "cluster_id", "manifest", "scenario", "targets", "warmup"]


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
    return service_action(target.description, **target.spec(), credentialsSecretRef=None)


def warmup(prefix: str) -> Target:
    """One action on the first cluster's last instance, which the timed phases never touch first."""
    app, component, node = INSTANCES[-1]
    return Target(cluster_id(0), app, component, node, description=f"{prefix}-warmup")
