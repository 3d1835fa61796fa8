"""The kopf wiring: the only module that imports ``kopf.on``. Each handler is a few lines.

There are no resource-changing handlers (create/update/resume) and no daemons on purpose:

- Our status is the run's only truth, so kopf's progress annotations and handler results are not
  used at all; with no changing handlers kopf writes nothing to our objects.
- ``@kopf.daemon`` would add kopf's finalizer to every active object (kopf 1.45 hardcodes
  ``requires_finalizer=True`` for daemons), blocking deletion while the operator is down, and a
  daemon that returns is never respawned for that object ("forever stopped"), which fights
  re-runs. Nothing needs cleaning up when a ServiceAction is deleted, so instead an
  ``@kopf.on.event`` handler feeds every watch event to the ``Supervisor``, which keeps one
  asyncio task per object that needs one and cancels it when the object is deleted.
- No ``@kopf.index`` either: kopf 1.45 creates one readiness toggle per object of the initial
  listing and every toggle wakes every waiter on one shared condition, which is quadratic (5,000
  finished objects kept a core busy for over 40 s after start). The per-cluster queue is kept by
  the ``Supervisor`` from the same event stream (the initial listing arrives as events with type
  None), only for unfinished objects; its startup barrier stands in for the index's guarantee
  that the first queue decision sees every existing object.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import kopf

from emrops.api.constants import GROUP, PLURAL, VERSION
from emrops.api.schedule import SCHEDULE_PLURAL
from emrops.controller.app import Runtime
from emrops.controller.kube import trimmed
from emrops.controller.labels import LabelRequirement, parse_label_selector
from emrops.controller.login import configure_kopf, connection_info, kopf_session, watch_streams
from emrops.controller.settings import Settings

logger = logging.getLogger("emrops.controller")


def label_filter(selector: str | None) -> dict[str, Any] | None:
    """kopf's ``labels=`` filter for a label selector (``a=b``, ``a!=b``, ``a``, ``!a``; comma = and).

    Every key gets one callable that applies all of its terms, so the Kubernetes semantics live in
    ``LabelRequirement.matches``: ``a!=b`` matches objects without label a, and several terms on
    one key all apply (kopf's value/PRESENT/ABSENT forms have no ``!=`` and one term per key).
    """
    if selector is None or not selector.strip():
        return None
    by_key: dict[str, list[LabelRequirement]] = {}
    for requirement in parse_label_selector(selector):
        by_key.setdefault(requirement.key, []).append(requirement)
    return {key: _label_test(tuple(terms)) for key, terms in by_key.items()}


def _label_test(terms: tuple[LabelRequirement, ...]) -> Callable[..., bool]:
    def label_matches(value: str | None, /, **_: Any) -> bool:
        # kopf calls it as fn(the label's value or None, **the cause's kwargs) (body=, logger=, ...
        # by keyword): the keyword arguments must be accepted, or every event raises TypeError.
        return all(term.matches(value) for term in terms)

    return label_matches


def build_registry(settings: Settings) -> kopf.OperatorRegistry:
    """Register every handler on a fresh registry (so the label selector can filter them)."""
    registry = kopf.OperatorRegistry()
    labels = label_filter(settings.watch.label_selector)

    streams = watch_streams(settings.watch.namespaces, settings.watch.peering is not None)

    @kopf.on.login(id="login", registry=registry)
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession:
        # kopf's own minimal logins (neither pykube-ng nor a generated client is needed), on a
        # bounded pool. Async: the session must be made in the operator's event loop.
        return kopf_session(connection_info(settings), streams=streams)

    @kopf.on.startup(id="startup", registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings, memo.config)
        identity = os.environ.get("POD_NAME") or socket.gethostname()
        memo.runtime = await Runtime.open(
            memo.config, functools.partial(connection_info, settings), identity=identity
        )
        memo.health.check = memo.runtime.ready_problems

    @kopf.on.cleanup(id="cleanup", registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        if getattr(memo, "runtime", None) is not None:
            await memo.runtime.close()

    @kopf.on.event(GROUP, VERSION, PLURAL, id="serviceaction_event", labels=labels, registry=registry)
    async def serviceaction_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        # Async on purpose: kopf runs sync handlers in threads, and the supervisor starts tasks.
        # managedFields are dropped: workers keep the body for as long as their run lasts.
        plain = trimmed(body)
        memo.runtime.supervisor.observe(event.get("type"), plain)
        memo.runtime.reaper.observe(event.get("type"), plain)
        memo.runtime.schedules.observe_run(plain)

    @kopf.on.event(GROUP, VERSION, SCHEDULE_PLURAL, id="schedule_event", labels=labels, registry=registry)
    async def schedule_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        memo.runtime.schedules.observe(event.get("type"), trimmed(body))

    return registry
