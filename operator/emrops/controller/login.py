"""How the operator meets kopf: credentials, kopf's session to the apiserver, kopf's settings.

Kept apart from the handlers so that the benchmark's kopf floor (``bench/kopf_floor.py``, a no-op
kopf operator) runs with exactly these settings and this session, and nothing else of emrops.

Where the apiserver's address and credentials come from: kopf's own minimal logins.

One source for kopf's watch and for the operator's own requests (``controller.apiserver``): the
in-cluster ServiceAccount (token, CA, namespace files), else ``KUBECONFIG`` / ~/.kube/config.
In a pod the apiserver's address is the one Kubernetes puts in the environment
(``KUBERNETES_SERVICE_HOST`` / ``_PORT``), as client-go takes it: kopf's default,
``kubernetes.default.svc``, needs cluster DNS, which a cluster may not have (or a NetworkPolicy
may block).
Neither pykube-ng nor a generated Kubernetes client is needed. Each call reads the files again, so
a rotated ServiceAccount token is picked up by the next login.

kopf's own session to the apiserver (``kopf_session``) gets a bounded connection pool: kopf's
default ``aiohttp.TCPConnector(limit=0)`` opens a connection for every concurrent request, each
holding about 128 KiB of TLS buffers.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import kopf

from emrops.controller.settings import Settings

#: Connections kopf may open beyond its long-lived watch streams: the initial listings and, with
#: peering, its presence patches. Events and status writes go through ``controller.apiserver``.
KOPF_SPARE_CONNECTIONS = 4


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def in_cluster_server(environ: Mapping[str, str] = os.environ) -> str:
    """The apiserver's URL from the pod's environment, as client-go's in-cluster config builds it."""
    host = environ["KUBERNETES_SERVICE_HOST"]
    port = environ.get("KUBERNETES_SERVICE_PORT") or "443"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def connection_info(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
    """The current credentials; raises ``kopf.LoginError`` when there are none."""
    settings = settings or kopf.OperatorSettings()
    info: kopf.ConnectionInfo | None
    if in_cluster():
        info = kopf.login_with_service_account(settings=settings)
        if info is not None:
            info = dataclasses.replace(info, server=in_cluster_server())
    else:
        info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError("no Kubernetes credentials: neither a ServiceAccount nor a kubeconfig")
    return info


def watch_streams(namespaces: tuple[str, ...], peering: bool) -> int:
    """How many watch requests kopf keeps open: one per resource and namespace (or one cluster-wide).

    The resources: ServiceActions, ServiceActionSchedules, and kopf's peering objects if any.
    """
    return max(1, len(namespaces)) * (3 if peering else 2)


def kopf_session(info: kopf.ConnectionInfo, *, streams: int) -> kopf.AiohttpSession:
    """kopf's session as kopf builds it, with the pool bounded to the streams plus a few spare.

    Built in the event loop (the login handler is async). kopf closes it when it re-logs in after
    a 401, then calls the login handler again for a fresh one.
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=streams + KOPF_SPARE_CONNECTIONS, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
        aiohttp_session=session,
    )


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: kopf keeps one (the object's last handled "essence") for change-detecting
    handlers (``on.create``/``on.update``/...) and daemons, which emrops does not register
    (``handlers``: event handlers only). kopf still builds it at every watch event, a deep copy of
    the whole body, managedFields and status included: 4% of the operator's CPU in a burst
    (py-spy) and a body's worth of garbage per event. With this storage it builds nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure_kopf(settings: kopf.OperatorSettings, config: Settings) -> None:
    # No CRD or namespace listing: the RBAC stays minimal and the namespaces are given explicitly.
    settings.scanning.disabled = True
    # Ask the apiserver to end each watch after 5 minutes and give up on a silent one a bit later,
    # so a half-dead connection (no events, no error) is replaced instead of hanging forever.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 30
    # kopf keeps one worker task per object alive this long after each event, waiting for more.
    # Our handler only hands the event to the supervisor (microseconds), so the default 5 s kept
    # a task, a queue and the object's last body for every object touched in the last 5 s: 142 MiB
    # peak over 5,000 finished objects at start, 57 MiB with 0.2 s.
    settings.queueing.idle_timeout = 0.2
    # The initial listing in pages of 500 instead of one response holding every object: parsing
    # 5,000 objects at once is the startup's memory peak (the apiserver's too).
    settings.watching.chunk_size = 500
    # No kopf Events at all: ours go through ``controller.events`` (aggregated, rate-limited,
    # bounded). kopf's poster would turn its per-object log lines into Events, one worker per
    # object over an unbounded queue; ``posting.level`` does not filter ``kopf.event`` calls,
    # only this switch stops the poster.
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = NoDiffBase()
    if config.watch.peering:
        settings.peering.name = config.watch.peering
        settings.peering.priority = config.watch.priority
        settings.peering.standalone = False
    else:
        settings.peering.standalone = True
