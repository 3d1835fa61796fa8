"""Injected faults: error codes, latency and dropped connections, for chosen actions.

A fault rule matches an action (or ``*``), fires on every call, on a share of calls (a seeded RNG,
so a run is reproducible) or on the next N calls (optionally only after letting the first M
matching calls through, so that rules line up in a sequence), and then does any of: wait
``latency`` seconds (real seconds, never time-scaled, because it exists to provoke client
timeouts), answer with an error ``code`` of the shared table, or drop the connection without an
answer, before or after the action was applied (``drop_after_apply`` is the ambiguous case a
client must not resubmit).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from emrops.acs.codes import TABLE

_FIELDS = {
    "action",
    "code",
    "detail",
    "retry_after_ms",
    "count",
    "after",
    "probability",
    "latency",
    "drop_after_apply",
    "drop_before_apply",
    "cluster_id",
}


@dataclass(frozen=True)
class FaultSpec:
    """One rule, as given in a scenario or to ``POST /_emulator/faults``."""

    action: str = "*"
    code: str | None = None
    #: Fills the ``%s`` of the code's message.
    detail: str = "fault injection"
    #: Milliseconds for ``x-acs-retry-after``; throttling codes default to 1 s (time-scaled).
    retry_after_ms: int | None = None
    #: Fire on this many matching calls, then retire; None = no limit.
    count: int | None = None
    #: Let this many matching calls through first (whatever other rules do to them), then fire:
    #: ``[{code: A, count: 2}, {code: B, after: 2, count: 1}]`` answers A, A, B, then OK.
    after: int = 0
    probability: float = 1.0
    latency: float = 0.0
    drop_after_apply: bool = False
    drop_before_apply: bool = False
    #: Only calls naming this ClusterId; None = any.
    cluster_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(_FIELDS)}


def parse_fault(raw: Any) -> FaultSpec:
    """Validate one rule; ``ValueError`` names the bad field."""
    if not isinstance(raw, Mapping):
        raise ValueError("a fault must be a mapping")
    unknown = set(map(str, raw)) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    code = raw.get("code")
    if code is not None and str(code) not in TABLE:
        raise ValueError(f"code {code!r} is not in the error table")
    count = raw.get("count")
    try:
        spec = FaultSpec(
            action=str(raw.get("action", "*")),
            code=str(code) if code is not None else None,
            detail=str(raw.get("detail", "fault injection")),
            retry_after_ms=int(raw["retry_after_ms"]) if raw.get("retry_after_ms") is not None else None,
            count=int(count) if count is not None else None,
            after=int(raw.get("after", 0)),
            probability=float(raw.get("probability", 1.0)),
            latency=float(raw.get("latency", 0.0)),
            drop_after_apply=_flag(raw.get("drop_after_apply", False)),
            drop_before_apply=_flag(raw.get("drop_before_apply", False)),
            cluster_id=str(raw["cluster_id"]) if raw.get("cluster_id") else None,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad fault value: {exc}") from exc
    if spec.count is not None and spec.count < 1:
        raise ValueError("count must be >= 1")
    if spec.after < 0:
        raise ValueError("after must be >= 0")
    if not 0.0 <= spec.probability <= 1.0:
        raise ValueError("probability must be within [0, 1]")
    if spec.latency < 0:
        raise ValueError("latency must be >= 0")
    if sum([spec.code is not None, spec.drop_after_apply, spec.drop_before_apply]) > 1:
        raise ValueError("code, drop_after_apply and drop_before_apply exclude each other")
    if spec.code is None and not (spec.drop_after_apply or spec.drop_before_apply or spec.latency):
        raise ValueError("a fault needs a code, a drop or a latency")
    return spec


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")


@dataclass
class FaultHit:
    """What the faults that fired on one call ask for."""

    code: str | None = None
    detail: str = ""
    retry_after_ms: int | None = None
    latency: float = 0.0
    drop_after_apply: bool = False
    drop_before_apply: bool = False


@dataclass
class _Rule:
    spec: FaultSpec
    remaining: int | None
    #: Matching calls still to let through before the rule may fire.
    skip: int = 0


@dataclass
class FaultBook:
    """The active rules, in the order they were added."""

    seed: int = 0
    _rules: list[_Rule] = field(default_factory=list)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(self, spec: FaultSpec) -> None:
        self._rules.append(_Rule(spec, spec.count, spec.after))

    def clear(self) -> None:
        self._rules.clear()

    def active(self) -> list[dict[str, Any]]:
        return [
            {**rule.spec.to_json(), "remaining": rule.remaining, "skipping": rule.skip}
            for rule in self._rules
        ]

    def draw(self, action: str, cluster_id: str | None) -> FaultHit | None:
        """The combined effect of every rule that fires on this call (first code wins)."""
        hit: FaultHit | None = None
        for rule in list(self._rules):
            spec = rule.spec
            if spec.action not in ("*", action):
                continue
            if spec.cluster_id is not None and spec.cluster_id != cluster_id:
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            if spec.probability < 1.0 and self._rng.random() >= spec.probability:
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
            hit = hit or FaultHit()
            hit.latency += spec.latency
            if spec.code is not None and hit.code is None:
                hit.code, hit.detail, hit.retry_after_ms = spec.code, spec.detail, spec.retry_after_ms
            hit.drop_after_apply = hit.drop_after_apply or spec.drop_after_apply
            hit.drop_before_apply = hit.drop_before_apply or spec.drop_before_apply
        return hit
