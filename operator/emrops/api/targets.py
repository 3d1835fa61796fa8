"""What a ServiceAction touches on its cluster, and when two of them overlap.

EMR answers ``ConcurrentModification`` when a second action touches services that a running one is
changing; the per-cluster queue avoids that by running overlapping actions one at a time. A target
is (application, component, node), where None means "all of them":

- scope APPLICATION: ``(app, None, None)``, overlapping anything of that application;
- scope COMPONENT: ``(app, component, None)`` per component, overlapping its instances;
- scope COMPONENT_INSTANCE: ``(app, component, node)`` per instance.

When the selector names nothing usable the target is ``(None, None, None)``: it overlaps
everything, so a malformed spec errs on the side of waiting, never of colliding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from emrops.api.spec import SelectorSpec
from emrops.emr.models import RunActionScope


@dataclass(frozen=True, order=True)
class Target:
    application: str | None
    component: str | None = None
    node: str | None = None

    def overlaps(self, other: Target) -> bool:
        return (
            _same(self.application, other.application)
            and _same(self.component, other.component)
            and _same(self.node, other.node)
        )


def _same(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


EVERYTHING = Target(None, None, None)


def targets_of(selector: SelectorSpec) -> frozenset[Target]:
    """The targets a selector names (see the module docstring)."""
    found: set[Target] = set()
    scope = selector.run_action_scope
    if scope is RunActionScope.COMPONENT_INSTANCE:
        found.update(
            Target(i.application_name, i.component_name, i.node_id) for i in selector.component_instances
        )
    elif scope is RunActionScope.COMPONENT:
        found.update(Target(c.application_name, c.component_name) for c in selector.components)
    if not found and selector.application_name:
        found.add(Target(selector.application_name))
    return frozenset(found) if found else frozenset({EVERYTHING})


def overlap(a: Iterable[Target], b: Iterable[Target]) -> bool:
    """Whether any target of ``a`` overlaps any target of ``b``."""
    others = tuple(b)
    return any(x.overlaps(y) for x in a for y in others)
