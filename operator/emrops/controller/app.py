"""The operator's runtime: the clients, limiter, metrics, Events and supervisor, opened and closed together.

Built in kopf's startup handler (``Runtime.open``), closed in its cleanup handler. No kopf here:
the credentials come from a ``Login`` function ``handlers`` passes in (kopf's own logins). The
per-cluster queue lives in the ``Supervisor``, fed by the same watch events as the workers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from emrops.controller import machine, tenancy
from emrops.controller.apiserver import ApiClient, Login
from emrops.controller.events import EventRecorder
from emrops.controller.kube import KubeApi, collection_path
from emrops.controller.metrics import Metrics
from emrops.controller.objects import delete_if_unchanged
from emrops.controller.ratelimit import RateLimiter
from emrops.controller.reaper import Reaper
from emrops.controller.runner import Services, Supervisor
from emrops.controller.schedules import Schedules
from emrops.controller.settings import Settings
from emrops.controller.tenancy_file import PolicyFile
from emrops.emr.client import EmrClient
from emrops.emr.credentials import DefaultChainCredentials

logger = logging.getLogger("emrops.controller")

#: Seconds between an intent write and the moment a missing answer means "outcome unknown":
#: the EMR call's own deadline plus time to record the answer. Erring short is safe: a worker
#: still in flight then finds the status moved on, drops its late answer and never calls again.
SUBMIT_GRACE_MARGIN = 20.0
#: The worker's overall timeout for one EMR call over the client's own deadline (its wait for a
#: free connection, 5 s, and some slack).
CALL_TIMEOUT_MARGIN = 10.0
#: How far apart the clocks of two replicas may be when one judges the other's submittedAt.
CLOCK_SKEW_MARGIN = 2.0


def policy_of(settings: Settings) -> machine.Policy:
    return machine.Policy(
        # The backoff and the bounded attempts are fixed internals: machine.Policy's defaults.
        poll_initial=settings.polling.initial_seconds,
        poll_max=settings.polling.max_seconds,
        submit_grace=settings.emr.call_timeout + SUBMIT_GRACE_MARGIN,
    )


def tenancy_policy_of(settings: Settings) -> Callable[[], tenancy.TenancyPolicy]:
    """The policy file, read again when it changes; without one, the closed default."""
    if settings.tenancy.policy_file is None:
        logger.info("no tenancy policy: the operator's own identity serves no namespace (docs/security.md)")
        return lambda: tenancy.CLOSED
    return PolicyFile(settings.tenancy.policy_file).current


@dataclass
class Runtime:
    settings: Settings
    api: ApiClient
    emr: EmrClient
    metrics: Metrics
    events: EventRecorder
    supervisor: Supervisor
    #: Deletes finished runs past their spec.ttlSecondsAfterFinished.
    reaper: Reaper
    #: Runs ServiceActionSchedules: creates their runs, prunes their history.
    schedules: Schedules
    #: Closes what ``open`` opened, last opened first.
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @classmethod
    async def open(cls, settings: Settings, login: Login, *, identity: str = "") -> Runtime:
        # Everything opened is pushed on the stack as it opens: if a later step fails (the
        # metrics port is taken), what was already open is closed before the error propagates.
        async with AsyncExitStack() as stack:
            runtime = await cls._open(stack, settings, login, identity)
            runtime._stack = stack.pop_all()
        return runtime

    @classmethod
    async def _open(cls, stack: AsyncExitStack, settings: Settings, login: Login, identity: str) -> Runtime:
        api = ApiClient(login)
        stack.push_async_callback(api.aclose)
        emr = await stack.enter_async_context(
            EmrClient(
                endpoint=settings.emr.endpoint,
                network=settings.emr.network,
                deadline=settings.emr.call_timeout,
            )
        )
        metrics = Metrics()
        if settings.serve.metrics_port:
            metrics.serve(settings.serve.metrics_port)
        events = EventRecorder(
            api, instance=identity, outcome=lambda outcome: metrics.events.labels(outcome=outcome).inc()
        )
        events.start()
        stack.push_async_callback(events.aclose)
        services = Services(
            store=KubeApi(api, namespaces=settings.watch.namespaces),
            emr=emr,
            default_credentials=DefaultChainCredentials(),
            limiter=RateLimiter(settings.rate_limit.qps, settings.rate_limit.burst),
            metrics=metrics,
            emit=events.emit,
            policy=policy_of(settings),
            # The client's own deadline plus its wait for a free connection (pool timeout, 5 s).
            call_timeout=settings.emr.call_timeout + CALL_TIMEOUT_MARGIN,
            shutdown_grace=settings.shutdown.grace_seconds,
            # What the in-flight grace leaves once the call's own timeout is taken out, less a
            # margin for clock skew between replicas (they compare our submittedAt to their clock).
            intent_budget=SUBMIT_GRACE_MARGIN - CALL_TIMEOUT_MARGIN - CLOCK_SKEW_MARGIN,
            tenancy_policy=tenancy_policy_of(settings),
        )
        reaper = Reaper(functools.partial(delete_if_unchanged, api))
        schedules = Schedules(api, emit=events.emit)
        stack.push_async_callback(schedules.stop)
        stack.push_async_callback(reaper.stop)
        supervisor = Supervisor(services)
        stack.push_async_callback(supervisor.stop)
        return cls(settings, api, emr, metrics, events, supervisor, reaper, schedules)

    async def ready_problems(self) -> list[str]:
        """Why the operator is not ready (``/readyz``); empty when it is.

        The ServiceAction list proves network, credentials, RBAC and the CRD. The supervisor's
        settle barrier is set once the watch delivered its initial listing; with nothing to list
        (no ServiceAction matches what this process watches) no event ever comes, so that case
        counts as settled too.
        """
        if self.supervisor.draining.is_set():
            return ["shutting down"]
        try:
            anything = await self._any_serviceaction()
        except Exception as exc:  # any failure to list means not ready; the reason is in the type
            return [f"the apiserver did not list ServiceActions: {type(exc).__name__}"]
        if anything and not self.supervisor.settled.is_set():
            return ["the watch has not delivered its initial listing yet"]
        return []

    async def _any_serviceaction(self) -> bool:
        watch = self.settings.watch
        params: dict[str, str | int] = {"limit": 1}
        if watch.label_selector:
            params["labelSelector"] = watch.label_selector
        for namespace in watch.namespaces or (None,):
            listing = await self.api.request(
                "GET", collection_path(namespace), params=params, request_timeout=5
            )
            if listing.get("items"):
                return True
        return False

    async def close(self) -> None:
        """Stop the supervisor, reaper and schedules, then close Events, EMR and the apiserver.

        A second call does nothing: the stack is empty once closed.
        """
        await self._stack.aclose()
