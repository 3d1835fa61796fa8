"""The operator's runtime: the clients, limiter, metrics and supervisor, opened and closed together.

Built in kopf's startup handler (``Runtime.open``), closed in its cleanup handler. No kopf here:
the kopf-specific piece (posting Events) is passed in by ``handlers``. The per-cluster queue
lives in the ``Supervisor``, fed by the same watch events as the workers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from kubernetes_asyncio import client, config

from emrops.api.constants import GROUP, PLURAL, VERSION
from emrops.controller import machine
from emrops.controller.backoff import Backoff
from emrops.controller.kube import KubeApi
from emrops.controller.metrics import Metrics
from emrops.controller.ratelimit import RateLimiter
from emrops.controller.runner import EmitFn, Services, Supervisor
from emrops.controller.settings import Settings
from emrops.emr.client import EmrClient
from emrops.emr.credentials import DefaultChainCredentials

logger = logging.getLogger("emrops.controller")

#: Seconds between an intent write and the moment a missing answer means "outcome unknown":
#: the EMR call's own deadline plus time to record the answer. Erring short is safe: a worker
#: still in flight then finds the status moved on, drops its late answer and never calls again.
SUBMIT_GRACE_MARGIN = 20.0


async def kube_api_client() -> client.ApiClient:
    """An ApiClient from the in-cluster ServiceAccount, else from ``KUBECONFIG`` / ~/.kube/config."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        await config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def policy_of(settings: Settings) -> machine.Policy:
    return machine.Policy(
        backoff=Backoff(base=settings.retry.backoff_base, cap=settings.retry.backoff_cap),
        poll_initial=settings.polling.initial_seconds,
        poll_max=settings.polling.max_seconds,
        bounded_attempts=settings.retry.bounded_attempts,
        submit_grace=settings.emr.call_timeout + SUBMIT_GRACE_MARGIN,
    )


@dataclass
class Runtime:
    settings: Settings
    api_client: client.ApiClient
    emr: EmrClient
    metrics: Metrics
    supervisor: Supervisor
    _closed: bool = field(default=False)

    @classmethod
    async def open(cls, settings: Settings, emit: EmitFn) -> Runtime:
        api_client = await kube_api_client()
        emr = EmrClient(
            endpoint=settings.emr.endpoint, network=settings.emr.network, deadline=settings.emr.call_timeout
        )
        await emr.__aenter__()
        metrics = Metrics()
        if settings.serve.metrics_port:
            metrics.serve(settings.serve.metrics_port)
        services = Services(
            store=KubeApi(api_client, namespaces=settings.watch.namespaces),
            emr=emr,
            default_credentials=DefaultChainCredentials(),
            limiter=RateLimiter(settings.rate_limit.qps, settings.rate_limit.burst),
            metrics=metrics,
            emit=emit,
            policy=policy_of(settings),
            # The client's own deadline plus its wait for a free connection (pool timeout, 5 s).
            call_timeout=settings.emr.call_timeout + 10.0,
            shutdown_grace=settings.shutdown.grace_seconds,
        )
        return cls(settings, api_client, emr, metrics, Supervisor(services))

    async def probe_apiserver(self) -> str:
        """Liveness: the apiserver answers a ServiceAction list (proves network, auth, CRD)."""
        custom = client.CustomObjectsApi(self.api_client)
        namespaces = self.settings.watch.namespaces
        if namespaces:
            await custom.list_namespaced_custom_object(
                GROUP, VERSION, namespaces[0], PLURAL, limit=1, _request_timeout=10
            )
        else:
            await custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1, _request_timeout=10)
        return "ok"

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.supervisor.stop()
        await self.emr.aclose()
        await self.api_client.close()
