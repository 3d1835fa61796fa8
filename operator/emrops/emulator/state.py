"""Everything one running emulator holds: the world, the gateway's memory, faults and the call log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from emrops.emulator.auth import Authenticator
from emrops.emulator.engine import OperationEngine
from emrops.emulator.faults import FaultBook
from emrops.emulator.model import World
from emrops.emulator.scenario import AccessKey, RateLimit
from emrops.emulator.settings import EmulatorSettings
from emrops.emulator.throttle import Throttle


@dataclass
class CallRecord:
    """One API call as received: what the inspection API's ``/_emulator/calls`` lists."""

    seq: int
    time: float
    action: str | None
    params: dict[str, str]
    access_key_id: str | None
    outcome: str = "OK"
    http_status: int | None = 200
    operation_id: str | None = None
    request_id: str = ""
    signature: str | None = None
    #: The connection was dropped without an answer (``http_status`` is then None).
    dropped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "action": self.action,
            "params": self.params,
            "access_key_id": self.access_key_id,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "operation_id": self.operation_id,
            "request_id": self.request_id,
            "signature": self.signature,
            "dropped": self.dropped,
        }


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    world: World = field(init=False)
    engine: OperationEngine = field(init=False)
    auth: Authenticator = field(init=False)
    throttle: Throttle = field(init=False)
    faults: FaultBook = field(init=False)
    calls: list[CallRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        scenario = self.settings.scenario
        self.engine = OperationEngine(
            step_seconds=scenario.engine.step_seconds, time_scale=self.settings.time_scale
        )
        self.auth = Authenticator(scenario.access_keys, window=self.settings.signature_window)
        self.throttle = Throttle(time_scale=self.settings.time_scale)
        self._load()

    def _load(self) -> None:
        scenario = self.settings.scenario
        self.world = World.from_scenario(scenario, int(time.time() * 1000))
        self.faults = FaultBook(seed=scenario.faults_seed)
        for spec in scenario.faults:
            self.faults.add(spec)
        self.calls.clear()

    async def reset(self) -> None:
        """Back to the scenario: operations cancelled and cleared, calls cleared, faults reloaded."""
        await self.engine.cancel_all()
        self.throttle.reset()
        self.auth.forget_nonces()
        self._load()

    def rate_limit(self, key: AccessKey) -> RateLimit:
        return key.rate_limit or self.settings.scenario.rate_limit

    def record(self, **fields: Any) -> CallRecord:
        record = CallRecord(seq=len(self.calls) + 1, time=time.time(), **fields)
        self.calls.append(record)
        return record
