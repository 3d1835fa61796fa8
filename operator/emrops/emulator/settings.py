"""The emulator's configuration: one frozen object, built once (by the CLI or a test)."""

from __future__ import annotations

from dataclasses import dataclass, field

from emrops.emulator.scenario import Scenario, default_scenario

API_VERSION = "2021-03-20"


@dataclass(frozen=True)
class EmulatorSettings:
    """How an emulator behaves; pass to ``create_app`` or ``EmulatorServer``.

    **Parameters:**

    * ``scenario``: clusters, keys, rate limits and faults to start from (and reset to).
    * ``time_scale``: multiplies every emulated duration: step times, rolling intervals, rate-limit
      refill and retry-after. ``0.01`` makes a 3 s interval take 30 ms. Fault latency is not scaled.
    * ``host_id``: the ``HostId`` of error bodies.
    * ``signature_window``: seconds a signed date may be off, and how long nonces are remembered.
    """

    scenario: Scenario = field(default_factory=default_scenario)
    time_scale: float = 1.0
    host_id: str = "emr.aliyuncs.com"
    signature_window: float = 15 * 60

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError("time_scale must be > 0")
