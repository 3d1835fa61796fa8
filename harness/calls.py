"""Reading the emulator's calls log.

``GET /_emulator/calls`` -> ``{"calls": [...]}``, one record per API call received: seq, time,
action, params (flat, as sent: "ComponentInstanceSelector.RunActionScope"), access_key_id,
outcome ("OK" or the EMR error code), http_status, operation_id (set when the call created an
operation), request_id, signature, dropped (connection aborted, no answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RUN_ACTION = "RunApplicationAction"
GET_OPERATION = "GetOperation"


def call_action(call: Mapping[str, Any]) -> str:
    return str(call.get("action") or "")


def call_outcome(call: Mapping[str, Any]) -> str:
    """ "OK" when the emulator served the call (even if it then dropped the answer), else the code."""
    return str(call.get("outcome") or "")


def call_param(call: Mapping[str, Any], name: str) -> Any:
    """A parameter by its flat API name: ``Description``, ``ComponentInstanceSelector.RunActionScope``."""
    return (call.get("params") or {}).get(name)


def accepted(call: Mapping[str, Any]) -> bool:
    """EMR started an operation for this call (whether or not the caller got the answer)."""
    return call_outcome(call) == "OK" and bool(call.get("operation_id"))


def call_ok(call: Mapping[str, Any]) -> bool:
    """EMR performed the call: a RunApplicationAction was ``accepted``; any other call was answered OK
    and the answer delivered."""
    if call_action(call) == RUN_ACTION:
        return accepted(call)
    return call_outcome(call) == "OK" and not call.get("dropped", False)


def accepted_by_description(calls: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Per Description: the RunApplicationAction calls EMR ``accepted``. A call dropped *after* it was
    applied counts (EMR acted; the client never heard); one refused or dropped before does not."""
    counts: dict[str, int] = {}
    for call in calls:
        if call_action(call) == RUN_ACTION and accepted(call):
            desc = str(call_param(call, "Description") or "")
            counts[desc] = counts.get(desc, 0) + 1
    return counts
