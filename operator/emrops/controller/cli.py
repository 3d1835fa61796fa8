"""``emrops run``: start the operator (kopf) with flags and ``EMROPS_*`` environment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import kopf

    from emrops.controller.settings import Settings

HELP = "run the ServiceAction operator"
DESCRIPTION = """\
Run the emrops operator: watch ServiceAction objects and run their EMR actions exactly once.

Every flag can also be set through its EMROPS_* environment variable (shown in brackets); a flag
wins over its variable. The Kubernetes config comes from KUBECONFIG (or ~/.kube/config), or from
the in-cluster ServiceAccount. EMR credentials come from each ServiceAction's
spec.credentialsSecretRef, else from the Alibaba Cloud default chain (ALIBABA_CLOUD_* variables,
RRSA, ECS RAM role).

Endpoints: /metrics on --metrics-port (Prometheus); on --health-port, /healthz (liveness: the
process answers) and /readyz (readiness: the apiserver lists ServiceActions, the watch has
delivered its initial listing, no shutdown has begun).
"""

#: Exit code for configuration errors (bad flag, no kubeconfig), as argparse uses.
EXIT_CONFIG = 2


def configure(parser: argparse.ArgumentParser) -> None:
    from emrops.controller.settings import add_arguments

    add_arguments(parser)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; the URLs carry no secret, but they are noise.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # At DEBUG the Kubernetes client logs every response body, Secrets' data included: never.
    logging.getLogger("kubernetes_asyncio.client.rest").setLevel(logging.INFO)
    if root.level > logging.DEBUG:
        # kopf logs every successful handler call at INFO: one line per watch event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _kubeconfig_problem() -> str | None:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return None
    paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    existing = [p for p in paths.split(os.pathsep) if p and Path(p).is_file()]
    if not existing:
        return f"no Kubernetes config: {paths} does not exist (set KUBECONFIG, or run in a cluster)"
    return None


async def _operate(settings: Settings, registry: kopf.OperatorRegistry) -> None:
    """kopf's operator, with the health endpoints up from before it starts until after it ends."""
    import kopf

    from emrops.controller.health import HealthServer, HealthState

    health = HealthState()
    server = HealthServer(health, settings.serve.health_port) if settings.serve.health_port else None
    if server is not None:
        await server.start()
    watch = settings.watch
    try:
        await kopf.operator(
            registry=registry,
            memo=kopf.Memo(config=settings, health=health),
            namespaces=list(watch.namespaces),
            clusterwide=not watch.namespaces,
            standalone=watch.peering is None,
            peering_name=watch.peering,
            priority=watch.priority,
        )
    finally:
        if server is not None:
            await server.stop()


def main(args: argparse.Namespace) -> int:
    from emrops.controller.settings import SettingsError, from_args

    try:
        settings = from_args(args, os.environ)
    except SettingsError as exc:
        print(f"emrops run: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = _kubeconfig_problem()
    if problem:
        print(f"emrops run: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.format, settings.log.level)

    from emrops.controller.handlers import build_registry

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: kopf already stopped cleanly
        asyncio.run(_operate(settings, build_registry(settings)))
    return 0
