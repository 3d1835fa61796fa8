"""Progress of a run, seen through ListComponentInstances ("4 of 12 instances restarted").

Pure. EMR's GetOperation says nothing about how far an operation got, but the targeted component
instances' states move (restart: STARTED, STOPPING, STOPPED, STARTING, STARTED). The tracker is
fed one snapshot per poll and remembers which instances it saw leave their resting state, so an
instance counts as done for a restart only once it came back. Actions whose effect is invisible
in instance states (config, refresh_*) have no progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from emrops.api.status import ProgressStatus
from emrops.api.targets import Target
from emrops.emr.models import ActionName

_VERBS = {ActionName.START: "started", ActionName.STOP: "stopped", ActionName.RESTART: "restarted"}
_GOAL = {ActionName.START: "STARTED", ActionName.STOP: "STOPPED", ActionName.RESTART: "STARTED"}


@dataclass(frozen=True)
class InstanceState:
    application: str
    component: str
    node_id: str
    state: str | None
    node_name: str | None = None


def trackable(action: ActionName) -> bool:
    return action in _GOAL


@dataclass
class ProgressTracker:
    """Folds instance snapshots into ``ProgressStatus`` for one run's targets."""

    action: ActionName
    targets: frozenset[Target]
    _left_rest: set[tuple[str, str, str]] = field(default_factory=set)

    def observe(self, instances: Iterable[InstanceState]) -> ProgressStatus | None:
        goal = _GOAL.get(self.action)
        if goal is None:
            return None
        total = done = failed = 0
        for inst in instances:
            target = Target(inst.application, inst.component, inst.node_id)
            if not any(target.overlaps(t) for t in self.targets):
                continue
            total += 1
            key = (inst.application, inst.component, inst.node_id)
            state = inst.state or ""
            if state.endswith("_FAILED"):
                failed += 1
                continue
            if state != goal:
                self._left_rest.add(key)
            elif self.action is not ActionName.RESTART or key in self._left_rest:
                done += 1
        if total == 0:
            return None
        message = f"{done} of {total} instances {_VERBS[self.action]}"
        if failed:
            message += f", {failed} failed"
        return ProgressStatus(total=total, done=done, failed=failed, message=message)
