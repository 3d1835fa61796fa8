"""``emrops emulator``: run the EMR OpenAPI emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from emrops.emulator.scenario import (
    AccessKey,
    ScenarioError,
    default_scenario,
    load_scenario,
    with_access_keys,
)
from emrops.emulator.server import EmulatorServer
from emrops.emulator.settings import EmulatorSettings

HELP = "run the local Alibaba Cloud EMR OpenAPI emulator"
DESCRIPTION = """\
Serve the EMR OpenAPI (2021-03-20) locally: RunApplicationAction, GetOperation, ListClusters,
GetCluster, ListNodes and ListComponentInstances, with real signature checks (ACS3-HMAC-SHA256
and HMAC-SHA1), EMR's error codes, throttling and rolling operations that take time.

Without --scenario it holds the demo cluster c-8a3f2e1d9b7c6a50 (region cn-hangzhou) and accepts
the access key emrops-demo / emrops-demo-secret. Inspection and fault injection (unsigned):
GET /_emulator/calls, GET|POST|DELETE /_emulator/faults, POST /_emulator/reset,
GET /_emulator/state, POST /_emulator/nodes. See docs/emulator.md.
"""

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8090, help="port to listen on; 0 picks a free one (default 8090)"
    )
    parser.add_argument(
        "--scenario", type=Path, help="scenario YAML file (clusters, keys, rate limits, faults)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every emulated duration by this (0.01 = 100x faster; default 1)",
    )
    parser.add_argument("--ready-file", type=Path, help="write the base URL here once listening")
    parser.add_argument(
        "--access-key",
        action="append",
        default=[],
        metavar="ID:SECRET[:TOKEN]",
        help="accept this access key too (repeatable; a TOKEN makes it an STS key)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _access_key(value: str) -> AccessKey:
    parts = value.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("--access-key wants ID:SECRET or ID:SECRET:TOKEN")
    return AccessKey(parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None)


def build_settings(args: argparse.Namespace) -> EmulatorSettings:
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    keys = tuple(_access_key(v) for v in args.access_key)
    if keys:
        scenario = with_access_keys(scenario, keys)
    return EmulatorSettings(scenario=scenario, time_scale=args.time_scale)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = build_settings(args)
    except (ScenarioError, ValueError) as exc:
        print(f"emrops emulator: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(settings, args.host, args.port, args.ready_file))


async def _serve(settings: EmulatorSettings, host: str, port: int, ready_file: Path | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = EmulatorServer(settings, host=host, port=port)
    try:
        await server.start()
    except OSError as exc:
        print(f"emrops emulator: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        log.info("EMR emulator listening on %s (time scale %g)", server.url, settings.time_scale)
        if ready_file is not None:
            # Write then rename, so a watcher never reads a half-written URL.
            partial = ready_file.with_name(ready_file.name + ".partial")
            partial.write_text(server.url + "\n", encoding="utf-8")
            os.replace(partial, ready_file)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.stop()
    return 0
