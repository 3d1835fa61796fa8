"""The plan of a suspended run: what RunApplicationAction would touch, in which batches, how long.

Pure: the runner lists the cluster's component instances (ListComponentInstances) and nodes
(ListNodes) and hands them here; ``build_plan`` keeps the instances the selector targets (the same
``emrops.api.targets`` rules as the per-cluster queue), cuts them into batches as EMR does (in
listing order, ``batchSize`` at a time when ``rollingExecute``, else one batch), and estimates the
duration. ``status.plan`` stays small whatever the cluster: counts cover every instance, the lists
only the first ``PLAN_LIST_LIMIT``.

Instances "on abnormal nodes now": EMR's public read APIs expose no node health flag (the
``AbnInstances`` of RunApplicationAction's answer come from EMR's own agent checks), so the plan
reports what they do show: instances on a node whose ``NodeState`` is not ``Running``, and
instances whose ``ComponentInstanceState`` is a failure (``*_FAILED``) or ``UNKNOWN``. EMR may
still report more nodes in ``status.abnInstances`` once the run is accepted.

The estimate is ``batches * per-batch + (batches - 1) * interval``, the per-batch time being a
rough figure per action (``BATCH_SECONDS``: a restart of a batch of services takes a couple of
minutes on a typical EMR cluster; a configuration push or a queue refresh well under one). It is
an order of magnitude for a human deciding when to approve, not a deadline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from emrops.api.constants import PLAN_LIST_LIMIT
from emrops.api.spec import ServiceActionSpec
from emrops.api.status import PlannedInstance, PlanStatus, format_time
from emrops.api.targets import Target, targets_of
from emrops.controller.progress import InstanceState
from emrops.emr.models import ActionName

#: Estimated seconds one batch takes, by action (see the module docstring).
BATCH_SECONDS: dict[ActionName, int] = {
    ActionName.RESTART: 120,
    ActionName.START: 60,
    ActionName.STOP: 60,
    ActionName.CONFIG: 60,
    ActionName.REFRESH_QUEUES: 30,
    ActionName.REFRESH_LABELS: 30,
}

#: Node states in which a node's services run (ListNodes' NodeState).
HEALTHY_NODE_STATES = frozenset({"Running"})


def abnormal(instance: InstanceState, node_state: str | None) -> bool:
    """Whether the instance is on a node that is not Running, or in a failed or unknown state."""
    state = instance.state or ""
    failed = state.endswith("_FAILED") or state == "UNKNOWN"
    return failed or (node_state is not None and node_state not in HEALTHY_NODE_STATES)


def estimate_seconds(action: ActionName, batches: int, interval: int) -> int:
    if batches <= 0:
        return 0
    return batches * BATCH_SECONDS[action] + (batches - 1) * interval


def build_plan(
    spec: ServiceActionSpec,
    instances: Iterable[InstanceState],
    node_states: Mapping[str, str | None],
    *,
    run: int,
    now: datetime,
) -> PlanStatus:
    """The plan of ``spec`` on a cluster that lists ``instances`` (see the module docstring)."""
    targets = targets_of(spec.component_instance_selector)
    chosen = [
        i
        for i in instances
        if any(Target(i.application, i.component, i.node_id).overlaps(t) for t in targets)
    ]
    rolling = bool(spec.rolling_execute)
    size = (spec.batch_size or 1) if rolling else max(1, len(chosen))
    batches = math.ceil(len(chosen) / size) if chosen else 0
    interval = (spec.interval or 0) if rolling else 0
    planned = [
        PlannedInstance(
            application_name=i.application,
            component_name=i.component,
            node_id=i.node_id,
            node_name=i.node_name,
            state=i.state,
            node_state=node_states.get(i.node_id),
            batch=n // size + 1,
        )
        for n, i in enumerate(chosen)
    ]
    odd = [p for p, i in zip(planned, chosen, strict=True) if abnormal(i, node_states.get(i.node_id))]
    return PlanStatus(
        run=run,
        resolved_at=format_time(now),
        instance_count=len(planned),
        instances=tuple(planned[:PLAN_LIST_LIMIT]),
        batch_count=batches,
        batch_size=size if rolling else len(chosen),
        interval=interval if rolling else None,
        execute_strategy=(spec.execute_strategy.value if spec.execute_strategy else "FAILED_BLOCK")
        if rolling
        else None,
        abnormal_count=len(odd),
        abnormal_instances=tuple(odd[:PLAN_LIST_LIMIT]),
        estimated_seconds=estimate_seconds(spec.action_name, batches, interval),
    )


def summary(plan: PlanStatus) -> str:
    """One line for status.message and the Event: counts, batches, the estimate."""
    if plan.error:
        return f"the plan could not be resolved: {plan.error}"
    count, batches = plan.instance_count or 0, plan.batch_count or 0
    text = f"{count} instance{'s' * (count != 1)} in {batches} batch{'es' * (batches != 1)}"
    if plan.abnormal_count:
        text += f", {plan.abnormal_count} on abnormal nodes or failed"
    return text + f", about {_duration(plan.estimated_seconds or 0)}"


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"
