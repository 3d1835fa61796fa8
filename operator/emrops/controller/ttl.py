"""When a finished ServiceAction is deleted (``spec.ttlSecondsAfterFinished``): a pure function.

As for a Job, the clock starts when the run ended (``status.finishedAt``), and only a run that
ended for good counts: ``Succeeded`` or ``Failed``. Never deleted, whatever the TTL:

- ``Unknown``: EMR may still be running the action; the object is the only record a person has
  of it, and it holds the cluster's queue until acknowledged (``machine.holds_cluster``).
- a run ``Failed`` on its deadline while its operation still runs (``machine.following``);
- an object that needs a worker: a re-run requested, an acknowledgement or a spec change not yet
  handled (``machine.needs_attention``), so a deletion never races a run that is about to start.

The deleter (``controller.reaper``) deletes with the object's uid and resourceVersion as
preconditions, so a change after this decision (a re-run annotation) makes the delete fail
instead of removing a run that has just been asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from emrops.api.constants import ACKNOWLEDGED_AT, RUN_REQUESTED_AT
from emrops.api.status import Phase, RunStatus, parse_time
from emrops.controller import machine

#: The phases after which the TTL runs (Unknown is not one: see the module docstring).
ENDED_FOR_GOOD = frozenset({Phase.SUCCEEDED, Phase.FAILED})


def _ttl(spec: Mapping[str, Any]) -> int | None:
    value = spec.get("ttlSecondsAfterFinished")
    # bool is an int in Python; the CRD refuses it, an unvalidated dict might not.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def expires_at(body: Mapping[str, Any]) -> datetime | None:
    """When ``body`` (a whole ServiceAction) is due for deletion; None when it is never due."""
    ttl = _ttl(body.get("spec") or {})
    if ttl is None:
        return None
    status = RunStatus.from_dict(body.get("status"))
    if status.phase not in ENDED_FOR_GOOD or machine.following(status):
        return None
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    generation = meta.get("generation")
    if machine.needs_attention(
        status,
        annotations.get(RUN_REQUESTED_AT),
        annotations.get(ACKNOWLEDGED_AT),
        generation if isinstance(generation, int) else None,
    ):
        return None
    finished = parse_time(status.finished_at)
    if finished is None:
        return None  # a status without its end time: nothing to count from
    return finished + timedelta(seconds=ttl)
