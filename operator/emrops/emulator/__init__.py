"""A local emulator of the Alibaba Cloud EMR OpenAPI (2021-03-20), served by aiohttp.

Layers, bottom up: ``scenario`` (what the emulator holds, read from YAML through the pydantic
models of ``scenario_file``), ``model`` (clusters, nodes, component instances and operations:
pure, no I/O), ``engine`` (runs operations in time), ``auth``/``throttle``/``faults`` (the
gateway's checks and injected failures), ``actions`` (one function per API), ``app`` (the
aiohttp application), ``server``/``cli`` (running it).

It may import ``emrops.acs`` (the wire protocol and the error table shared with the client) and
never the client (``emrops.emr``), the controller, the Kubernetes API model or kopf: it stands in
for the real service, so it must not share the client's understanding of it.
"""

from __future__ import annotations

from emrops.emulator.app import create_app
from emrops.emulator.server import EmulatorServer
from emrops.emulator.settings import EmulatorSettings

__all__ = ["EmulatorServer", "EmulatorSettings", "create_app"]
