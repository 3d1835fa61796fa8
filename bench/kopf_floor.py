"""The kopf floor: a no-op kopf operator with emrops' kopf settings, watching the same ServiceActions.

What any kopf-based operator costs to watch these objects: kopf, aiohttp and Python, the same
settings (``emrops.controller.login.configure_kopf``), the same bounded session and an
``@kopf.on.event`` handler that does nothing. ``bench/run.py`` starts it as a process next to
emrops over the same objects and reports emrops' RSS and CPU as a ratio to it.

    KUBECONFIG=... .venv/bin/python bench/kopf_floor.py --health-file PATH
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

import kopf

from emrops.controller.login import configure_kopf, connection_info, kopf_session, watch_streams
from emrops.controller.settings import Settings

GROUP, VERSION, PLURAL = "emrops.io", "v1alpha1", "serviceactions"


def registry(ready: Path) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    config = Settings()

    @kopf.on.login(registry=registry)
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession:
        return kopf_session(connection_info(settings), streams=watch_streams((), peering=False))

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, config)
        await asyncio.to_thread(ready.write_text, "started\n")

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def noop(**_: Any) -> None:
        pass

    return registry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ready-file", type=Path, required=True, help="written once kopf has started")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(kopf.operator(registry=registry(args.ready_file), clusterwide=True, standalone=True))


if __name__ == "__main__":
    main()
