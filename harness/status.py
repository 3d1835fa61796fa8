"""Reading ServiceActions: phases, conditions, the summary a failed wait shows, a phase log."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})
IN_FLIGHT_PHASES = frozenset({"Submitting", "Running"})
#: The annotation a person sets to acknowledge an Unknown run (docs/concepts.md).
ACKNOWLEDGED_AT = "emrops.io/acknowledged-at"


def phase(obj: Mapping[str, Any]) -> str | None:
    status = obj.get("status") or {}
    return status.get("phase") if isinstance(status, dict) else None


def condition(obj_or_status: dict[str, Any], ctype: str) -> dict[str, Any]:
    status = obj_or_status.get("status", obj_or_status) or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def summarize(obj: dict[str, Any]) -> dict[str, Any]:
    """What a failed wait shows of an object: its status, conditions folded."""
    st = obj.get("status") or {}
    return {
        "phase": st.get("phase"),
        "message": st.get("message"),
        "attempts": st.get("attempts"),
        "lastError": st.get("lastError"),
        "operationId": st.get("operationId"),
        "waitingFor": st.get("waitingFor"),
        "conditions": {
            c.get("type"): [c.get("status"), c.get("reason"), c.get("message")]
            for c in st.get("conditions") or []
        },
    }


def summaries(objs: Mapping[str, dict[str, Any]]) -> str:
    return json.dumps({n: summarize(o) for n, o in objs.items()}, indent=1)


class PhaseLog:
    """Every phase each object was seen in, in order, and every moment two of them were in flight
    (Submitting or Running) at once. Use ``record`` as (or inside) a ``Kube.wait_until`` check."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.phases: dict[str, list[str]] = {n: [] for n in self.names}
        self.waiting_for: dict[str, set[str]] = {n: set() for n in self.names}
        self.together: list[dict[str, str]] = []

    def record(self, objs: dict[str, dict[str, Any]]) -> None:
        in_flight: dict[str, str] = {}
        for name in self.names:
            st = objs.get(name, {}).get("status") or {}
            now = st.get("phase")
            seen = self.phases[name]
            if now and (not seen or seen[-1] != now):
                seen.append(now)
            if now == "Queued":
                self.waiting_for[name].update(st.get("waitingFor") or [])
            if now in IN_FLIGHT_PHASES:
                in_flight[name] = str(now)
        if len(in_flight) > 1:
            self.together.append(in_flight)

    def all_in(self, objs: dict[str, dict[str, Any]], phases: Iterable[str] = TERMINAL_PHASES) -> bool:
        """``record``, then whether every object is in one of ``phases``."""
        self.record(objs)
        wanted = set(phases)
        return all(phase(objs.get(n, {})) in wanted for n in self.names)
