"""``emrops run``: start the operator (kopf) with flags and ``EMROPS_*`` environment."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import kopf

    from emrops.controller.health import HealthState
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
    if root.level > logging.DEBUG:
        # kopf logs every successful handler call at INFO: one line per watch event.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _kubeconfig_problem() -> str | None:
    from emrops.controller.login import in_cluster  # imports kopf: not at import time (--help)

    if in_cluster():
        return None
    paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    existing = [p for p in paths.split(os.pathsep) if p and Path(p).is_file()]
    if not existing:
        return f"no Kubernetes config: {paths} does not exist (set KUBECONFIG, or run in a cluster)"
    return None


async def _operate(settings: Settings, registry: kopf.OperatorRegistry) -> int:
    """kopf's operator, with the health endpoints up from before it starts until after it ends.

    With ``--leader-elect`` it waits for the Lease first (a ready standby meanwhile), and stops
    (exit code 1: the pod restarts as a standby) when it can no longer renew it.
    """
    import kopf
    from kopf._core.engines.peering import Identity as KopfIdentity  # a str; kopf does not export it

    from emrops.controller.health import HealthServer, HealthState

    health = HealthState()
    server = HealthServer(health, settings.serve.health_port) if settings.serve.health_port else None
    if server is not None:
        await server.start()
    watch = settings.watch
    # One name for this replica, in the Lease and in kopf: left to itself kopf names the process
    # after its user, and the image's uid (65532) has no passwd entry: kopf.operator would fail.
    identity = _identity()
    try:
        async with _leadership(settings, health, identity) as lost:
            await kopf.operator(
                registry=registry,
                memo=kopf.Memo(config=settings, health=health),
                namespaces=list(watch.namespaces),
                clusterwide=not watch.namespaces,
                standalone=watch.peering is None,
                peering_name=watch.peering,
                priority=watch.priority,
                stop_flag=lost,
                identity=KopfIdentity(identity),
            )
        return 1 if lost is not None and lost.is_set() else 0
    finally:
        if server is not None:
            await server.stop()


@contextlib.asynccontextmanager
async def _leadership(
    settings: Settings, health: HealthState, identity: str
) -> AsyncIterator[asyncio.Event | None]:
    """Hold the Lease for the duration (``--leader-elect``); yields an event set on losing it."""
    if not settings.leader.enabled:
        yield None
        return
    from emrops.controller.apiserver import ApiClient
    from emrops.controller.leader import Elector, KubeLeases, LeaseConfig
    from emrops.controller.login import connection_info

    leader = settings.leader
    namespace = leader.namespace or _own_namespace()
    config = LeaseConfig(
        namespace=namespace,
        name=leader.name,
        identity=identity,
        lease_duration=leader.lease_duration,
        renew_deadline=leader.renew_deadline,
        retry_period=leader.retry_period,
    )
    # A pool of its own (two connections): the Lease is renewed while kopf and the workers run,
    # and must never wait behind a burst of status writes for a free connection.
    api = ApiClient(connection_info, max_connections=2)
    elector = Elector(config, KubeLeases(api, namespace, leader.name))
    lost = asyncio.Event()
    keeper: asyncio.Task[None] | None = None
    try:
        health.role = "standby"
        await elector.acquire()
        health.role = "leader"
        keeper = asyncio.create_task(elector.keep(lost), name="emrops lease")
        yield lost
    finally:
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        if not lost.is_set():
            await elector.release()
        await api.aclose()


#: Where Kubernetes mounts the pod's ServiceAccount namespace.
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    """The pod's namespace: POD_NAMESPACE (the chart sets it), the ServiceAccount's, or default."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return _SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _identity() -> str:
    """This process in the Lease: POD_NAME (the chart sets it), else host name and a random tail."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _tenancy_problem(settings: Settings) -> str | None:
    from emrops.controller.tenancy_file import problem

    return problem(settings.tenancy.policy_file) if settings.tenancy.policy_file else None


def main(args: argparse.Namespace) -> int:
    from emrops.controller.settings import SettingsError, from_args

    try:
        settings = from_args(args, os.environ)
    except SettingsError as exc:
        print(f"emrops run: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = _tenancy_problem(settings) or _kubeconfig_problem()
    if problem:
        print(f"emrops run: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log.format, settings.log.level)

    from emrops.controller.handlers import build_registry

    code = 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: kopf already stopped cleanly
        code = asyncio.run(_operate(settings, build_registry(settings)))
    return code
