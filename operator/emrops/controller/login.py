"""Where the apiserver's address and credentials come from: kopf's own minimal logins.

One source for kopf's watch and for the operator's own requests (``controller.apiserver``): the
in-cluster ServiceAccount (token, CA, namespace files), else ``KUBECONFIG`` / ~/.kube/config.
Neither pykube-ng nor a generated Kubernetes client is needed. Each call reads the files again, so
a rotated ServiceAccount token is picked up by the next login.

kopf's own session to the apiserver (``kopf_session``) gets a bounded connection pool: kopf's
default ``aiohttp.TCPConnector(limit=0)`` opens a connection for every concurrent request, each
holding about 128 KiB of TLS buffers.
"""

from __future__ import annotations

import os

import aiohttp
import kopf

#: Connections kopf may open beyond its long-lived watch streams: the initial listings and, with
#: peering, its presence patches. Events and status writes go through ``controller.apiserver``.
KOPF_SPARE_CONNECTIONS = 4


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def connection_info(settings: kopf.OperatorSettings | None = None) -> kopf.ConnectionInfo:
    """The current credentials; raises ``kopf.LoginError`` when there are none."""
    settings = settings or kopf.OperatorSettings()
    info: kopf.ConnectionInfo | None
    if in_cluster():
        info = kopf.login_with_service_account(settings=settings)
    else:
        info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError("no Kubernetes credentials: neither a ServiceAccount nor a kubeconfig")
    return info


def watch_streams(namespaces: tuple[str, ...], peering: bool) -> int:
    """How many watch requests kopf keeps open: one per resource and namespace (or one cluster-wide)."""
    return max(1, len(namespaces)) * (2 if peering else 1)


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
