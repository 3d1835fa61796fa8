"""Workers: one asyncio task per ServiceAction whose run needs attention.

The ``Supervisor`` is fed every watch event (``observe``), the initial listing included. It starts
a ``Worker`` for an object whose run is not finished (or whose re-run annotation has a new value),
hands it newer bodies, wakes queued workers when something changes on their cluster, and cancels
a worker when its object is deleted. It also keeps the per-cluster queue (a ``queue.Book`` of the
unfinished objects, which the workers read as ``Services.queue``). Finished objects cost nothing:
no task, no timer, no finalizer, no queue entry.

Startup ordering: the first queue decision must see every object that already exists, or a
younger run could be submitted ahead of an older one it overlaps. The initial listing arrives as
separate events, so the supervisor holds a ``settled`` barrier, set once no new object has been
seen for ``Services.settle_seconds`` after the first event (or ``settle_max`` after it at the
latest); a worker writes its initial status at once but waits for the barrier before its first
queue check.

A worker loops: read the status, ask the state machine (``machine.decide``), perform the decision
(a conditional status write, an EMR call, a wait), repeat, and exit once the run is finished.
Every status write goes through ``kube.write_status`` (merge patch conditioned on the
resourceVersion; a 409 means "re-read and decide again"). The worker never calls
RunApplicationAction unless its intent write won.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import pydantic

from emrops.acs.codes import Classification
from emrops.api.constants import RUN_REQUESTED_AT
from emrops.api.spec import ServiceActionSpec
from emrops.api.status import Phase, ProgressStatus, RunStatus, parse_time
from emrops.api.targets import targets_of
from emrops.controller import machine, queue
from emrops.controller.calls import call_error, describe_credentials, naming_credentials
from emrops.controller.kube import Body, Conflict, Gone, ObjectStore, SecretUnreadable, write_status
from emrops.controller.metrics import Metrics
from emrops.controller.progress import InstanceState, ProgressTracker, trackable
from emrops.controller.ratelimit import LimiterKey, RateLimiter
from emrops.emr.credentials import CredentialsProvider, StaticCredentials
from emrops.emr.errors import CredentialsError, EmrError
from emrops.emr.models import (
    ComponentInstance,
    GetOperationRequest,
    GetOperationResponse,
    ListComponentInstancesRequest,
    RunApplicationActionRequest,
    RunApplicationActionResponse,
)

logger = logging.getLogger("emrops.controller")

#: Keys of a credentials Secret.
ACCESS_KEY_ID = "accessKeyId"
ACCESS_KEY_SECRET = "accessKeySecret"  # noqa: S105 - a key name, not a secret
SECURITY_TOKEN = "securityToken"  # noqa: S105 - a key name, not a secret


class EmrApi(Protocol):
    """The part of ``emrops.emr.client.EmrClient`` the workers use."""

    async def run_application_action(
        self, request: RunApplicationActionRequest, *, credentials: CredentialsProvider
    ) -> RunApplicationActionResponse: ...

    async def get_operation(
        self, request: GetOperationRequest, *, credentials: CredentialsProvider
    ) -> GetOperationResponse: ...

    def iter_component_instances(
        self, request: ListComponentInstancesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[ComponentInstance]: ...


EmitFn = Callable[[Body, machine.Event], None]
QueueView = Callable[[queue.ClusterKey], Iterable[queue.QueueEntry]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """What every worker shares."""

    store: ObjectStore
    emr: EmrApi
    default_credentials: CredentialsProvider
    limiter: RateLimiter
    metrics: Metrics
    emit: EmitFn
    policy: machine.Policy = field(default_factory=machine.Policy)
    #: Overall seconds for one EMR call (on top of the client's own deadline).
    call_timeout: float = 35.0
    credentials_timeout: float = 20.0
    #: The per-cluster queue as the workers read it; the ``Supervisor`` puts its ``queue.Book`` here.
    queue: QueueView = lambda _key: ()
    #: Startup barrier: the initial listing is over once no new object was seen for this long...
    settle_seconds: float = 1.0
    #: ... or this long after the first event at the latest (a stream of creations never ends it).
    settle_max: float = 15.0
    clock: Callable[[], datetime] = _utc_now
    rng: Callable[[], float] = random.random


def _meta(body: Body) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def _ref(body: Body) -> str:
    meta = _meta(body)
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _rerun_value(body: Body) -> str | None:
    value = (_meta(body).get("annotations") or {}).get(RUN_REQUESTED_AT)
    return None if value is None else str(value)


def needs_worker(body: Body) -> bool:
    return machine.needs_attention(RunStatus.from_dict(body.get("status")), _rerun_value(body))


def _newer(candidate: Body, current: Body) -> bool:
    """Whether ``candidate`` is at least as recent as ``current``.

    resourceVersions are opaque by contract but etcd revisions (integers) in practice; when they
    are not integers, take the candidate. Correctness never rests on this: every write is
    conditional, so a stale body only costs a 409 and a re-read.
    """
    try:
        return int(_meta(candidate)["resourceVersion"]) >= int(_meta(current)["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return True


class Worker:
    """Drives one ServiceAction's run to its end (see the module docstring)."""

    def __init__(self, services: Services, body: Body, settled: asyncio.Event | None = None) -> None:
        self.services = services
        #: Set once the supervisor has seen the initial listing; no queue check before that.
        self.settled = settled
        self.body: Body = body
        self.poll_interval: float | None = None
        self.provider: CredentialsProvider | None = None
        self.limiter_key: LimiterKey | None = None
        #: Where the credentials came from, for messages (never a secret).
        self.credentials_source: str | None = None
        self.tracker: ProgressTracker | None = None
        self.wakeable = False
        self._wake = asyncio.Event()

    # --- fed by the supervisor ------------------------------------------------------------

    def update(self, body: Body) -> None:
        if _newer(body, self.body):
            self.body = body

    def wake(self) -> None:
        if self.wakeable:
            self._wake.set()

    @property
    def ref(self) -> str:
        return _ref(self.body)

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                if await self._step():
                    return
                failures = 0
            except Gone:
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                delay = min(60.0, 2.0**failures)
                logger.exception("%s: unexpected error; trying again in %.0fs", self.ref, delay)
                await self._sleep(delay, wakeable=False)
                await self._refresh()

    def _context(self, now: datetime | None = None) -> machine.Context:
        body = self.body
        meta = _meta(body)
        now = now or self.services.clock()
        spec = body.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        return machine.Context(
            status=RunStatus.from_dict(body.get("status")),
            now=now,
            created_at=parse_time(meta.get("creationTimestamp")) or now,
            generation=meta.get("generation"),
            rerun_value=_rerun_value(body),
            deadline_seconds=deadline if isinstance(deadline, int) else None,
            jitter=self.services.rng(),
            poll_interval=self.poll_interval,
            policy=self.services.policy,
        )

    async def _step(self) -> bool:
        """One decision, performed. True when the worker is done."""
        ctx = self._context()
        decision = machine.decide(ctx, machine.Look())
        if isinstance(decision, machine.Gate):
            if self.settled is not None and not self.settled.is_set():
                await self.settled.wait()
                return False  # decide again from the body as it is now
            try:
                gates = await self._gates()
            except pydantic.ValidationError as exc:
                decision = machine.reject(ctx, "InvalidSpec", f"The spec cannot be read: {_first_error(exc)}")
            else:
                decision = machine.decide(self._context(), gates)
        match decision:
            case machine.Nothing():
                return True
            case machine.Submit():
                await self._submit(decision)
                return False
            case machine.Poll():
                await self._poll()
                return False
            case machine.Finish() | machine.Stall():
                return await self._apply(decision)
            case machine.Wait():
                if await self._apply(decision):
                    await self._after(decision)
                return False
        logger.debug("%s: %s", self.ref, decision)
        return False

    async def _after(self, decision: machine.Wait) -> None:
        if decision.poll_interval is not None:
            self.poll_interval = decision.poll_interval
        phase = RunStatus.from_dict(self.body.get("status")).phase
        wakeable = not isinstance(decision, machine.Retry) and phase in (Phase.PENDING, Phase.QUEUED)
        await self._sleep(decision.after, wakeable=wakeable)

    async def _sleep(self, seconds: float, *, wakeable: bool) -> None:
        if seconds <= 0:
            return
        self._wake.clear()
        self.wakeable = wakeable
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        finally:
            self.wakeable = False

    async def _refresh(self) -> None:
        meta = _meta(self.body)
        self.body = await self.services.store.get(str(meta["namespace"]), str(meta["name"]))

    # --- writing --------------------------------------------------------------------------

    async def _apply(self, decision: machine.Decision, *, must_write: bool = False) -> bool:
        """Write the decision's status (if any) and post its Event; False when we lost a race."""
        if decision.status is None:
            self._post(decision.event)
            return not must_write
        try:
            written = await write_status(
                self.services.store, self.body, decision.status, self.services.clock()
            )
        except Conflict:
            logger.debug("%s: changed under us; re-reading", self.ref)
            await self._refresh()
            return False
        if written is None:
            return not must_write
        before = RunStatus.from_dict(self.body.get("status"))
        self.body = written
        self._post(decision.event)
        self._account(before, decision)
        return True

    def _post(self, event: machine.Event | None) -> None:
        if event is None:
            return
        log = logger.warning if event.type == "Warning" else logger.info
        log("%s: %s: %s", self.ref, event.reason, event.message)
        try:
            self.services.emit(self.body, event)
        except Exception:  # an Event is never worth failing a run for
            logger.exception("%s: could not post the %s event", self.ref, event.reason)

    def _account(self, before: RunStatus, decision: machine.Decision) -> None:
        metrics = self.services.metrics
        after = decision.status
        if after is None:
            return
        metrics.saw(str(_meta(self.body).get("uid", "")), after.phase.value if after.phase else None)
        if isinstance(decision, machine.Retry) and after.phase is Phase.PENDING:
            metrics.retries.labels(reason=after.reason or "Unknown").inc()
        if after.finished and not before.finished:
            start = parse_time(after.submitted_at) or parse_time(after.start_time)
            if start is not None and after.phase is not None:
                action = str((self.body.get("spec") or {}).get("actionName", ""))
                seconds = max(0.0, (self.services.clock() - start).total_seconds())
                metrics.operation_duration.labels(action=action, phase=after.phase.value).observe(seconds)

    async def _record(self, observation: machine.Observation) -> None:
        """Apply the decision for a call's result, retrying the write until it lands.

        After RunApplicationAction this write carries the operationId: losing it would turn a
        known outcome into Unknown, so conflicts and API errors are retried, not given up on.
        """
        delay = 0.5
        while True:
            decision = machine.decide(self._context(), observation)
            if isinstance(decision, machine.Drop):
                logger.info("%s: result dropped: %s", self.ref, decision.why)
                return
            try:
                if await self._apply(decision):
                    if isinstance(decision, machine.Wait):
                        await self._after(decision)
                    return
            except Gone:
                raise
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(
                    "%s: could not record %s; retrying in %.1fs", self.ref, type(observation).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                try:
                    await self._refresh()
                except Gone:
                    raise
                except Exception:
                    logger.debug("%s: re-read failed too", self.ref, exc_info=True)

    # --- gates and credentials ------------------------------------------------------------

    async def _gates(self) -> machine.Gates:
        found = queue.entry_of(self.body)
        if found is not None:
            key, me = found
            waiting = queue.blockers(me, self.services.queue(key))
            if waiting:
                return machine.Gates(waiting_for=waiting)
        try:
            await self._resolve_credentials()
        except (SecretUnreadable, CredentialsError) as exc:
            return machine.Gates(credentials_problem=str(exc))
        return machine.Gates()

    async def _resolve_credentials(self) -> tuple[CredentialsProvider, LimiterKey]:
        spec = ServiceActionSpec.from_body(self.body)
        namespace = str(_meta(self.body).get("namespace"))
        provider: CredentialsProvider
        secret_ref: str | None = None
        if spec.credentials_secret_ref is not None:
            name = spec.credentials_secret_ref.name
            secret_ref = f"{namespace}/{name}"
            data = await self.services.store.read_secret(namespace, name)
            for key in (ACCESS_KEY_ID, ACCESS_KEY_SECRET):
                if not data.get(key):
                    raise SecretUnreadable(
                        f"Secret {namespace}/{name} (spec.credentialsSecretRef) has no key {key}; it needs "
                        f"{ACCESS_KEY_ID} and {ACCESS_KEY_SECRET} (and optionally {SECURITY_TOKEN})"
                    )
            provider = StaticCredentials(
                data[ACCESS_KEY_ID], data[ACCESS_KEY_SECRET], data.get(SECURITY_TOKEN)
            )
        else:
            provider = self.services.default_credentials
        try:
            async with asyncio.timeout(self.services.credentials_timeout):
                credential = await provider.get()
        except TimeoutError:
            raise CredentialsError(
                f"the credentials provider did not answer within {self.services.credentials_timeout:g}s"
            ) from None
        self.provider = provider
        self.limiter_key = LimiterKey(credential.access_key_id, spec.region_id)
        self.credentials_source = describe_credentials(credential.access_key_id, secret_ref)
        return provider, self.limiter_key

    # --- calls ----------------------------------------------------------------------------

    async def _submit(self, decision: machine.Submit) -> None:
        intent = decision.status
        assert intent is not None
        if self.provider is None or self.limiter_key is None:
            await self._resolve_credentials()
        assert self.provider is not None and self.limiter_key is not None
        # Wait for a token before the intent, so the Submitting window covers only the call.
        await self.services.limiter.acquire(self.limiter_key)
        # Logged before the write, so a log that ends here after a crash covers every run that
        # may have been left in Submitting (the audit trail for an Unknown phase).
        logger.info("%s: Submitting intent for attempt %s", self.ref, intent.attempts)
        if not await self._apply(decision, must_write=True):
            return  # another writer won (or the object changed): decide again from what is there
        request = ServiceActionSpec.from_body(self.body).to_request()
        observation: machine.Observation
        run, attempt = intent.run or 1, intent.attempts or 1
        try:
            async with asyncio.timeout(self.services.call_timeout):
                response = await self.services.emr.run_application_action(request, credentials=self.provider)
        except (EmrError, CredentialsError, TimeoutError) as exc:
            error = naming_credentials(
                call_error(exc, timeout=self.services.call_timeout), self.credentials_source
            )
            self._count("RunApplicationAction", error)
            observation = machine.Refused(run=run, attempt=attempt, error=error)
        else:
            self.services.metrics.api_calls.labels(action="RunApplicationAction", code="OK").inc()
            observation = machine.Accepted(
                run=run,
                attempt=attempt,
                operation_id=response.operation_id,
                request_id=response.request_id,
                abn_instances=tuple((a.node_id, a.node_name) for a in response.abn_instances),
            )
            self.tracker = None
            self.poll_interval = None
        await self._record(observation)

    def _count(self, action: str, error: machine.CallError) -> None:
        metrics = self.services.metrics
        metrics.api_calls.labels(action=action, code=error.code).inc()
        if error.throttling:
            metrics.throttles.labels(action=action).inc()
            if self.limiter_key is not None:
                self.services.limiter.throttled(self.limiter_key, error.retry_after)

    async def _poll(self) -> None:
        status = RunStatus.from_dict(self.body.get("status"))
        spec = ServiceActionSpec.from_body(self.body)
        observation: machine.Observation
        try:
            if self.provider is None or self.limiter_key is None:
                await self._resolve_credentials()
        except (SecretUnreadable, CredentialsError) as exc:
            error = machine.CallError(
                Classification.TERMINAL, "CredentialsMissing", str(exc), "CredentialsMissing"
            )
            await self._record(machine.PollFailed(error))
            return
        assert self.provider is not None and self.limiter_key is not None
        await self.services.limiter.acquire(self.limiter_key)
        request = GetOperationRequest(
            region_id=spec.region_id, cluster_id=spec.cluster_id, operation_id=status.operation_id or ""
        )
        try:
            async with asyncio.timeout(self.services.call_timeout):
                response = await self.services.emr.get_operation(request, credentials=self.provider)
        except (EmrError, CredentialsError, TimeoutError) as exc:
            error = naming_credentials(
                call_error(exc, timeout=self.services.call_timeout), self.credentials_source
            )
            self._count("GetOperation", error)
            if error.classification is Classification.TERMINAL:
                self.provider = None  # re-read the Secret next time: it may have been fixed
            observation = machine.PollFailed(error)
        else:
            self.services.metrics.api_calls.labels(action="GetOperation", code="OK").inc()
            op = response.operation
            view = machine.OperationView(
                operation_id=op.operation_id,
                state=str(op.operation_state),
                start_time=_from_ms(op.start_time),
                end_time=_from_ms(op.end_time),
                reason_code=op.state_change_reason.code if op.state_change_reason else None,
                reason_message=op.state_change_reason.message if op.state_change_reason else None,
            )
            progress = await self._progress(spec) if view.state == "IN_PROGRESS" else None
            observation = machine.Polled(view, progress)
        await self._record(observation)

    async def _progress(self, spec: ServiceActionSpec) -> ProgressStatus | None:
        """Best effort: one ListComponentInstances listing of the targets; None when unavailable."""
        if not trackable(spec.action_name) or self.provider is None or self.limiter_key is None:
            return None
        if self.tracker is None:
            selector = spec.component_instance_selector
            self.tracker = ProgressTracker(spec.action_name, targets_of(selector))
        targets = self.tracker.targets
        apps = sorted({t.application for t in targets if t.application})
        components = sorted({t.component for t in targets if t.component})
        request = ListComponentInstancesRequest(
            region_id=spec.region_id,
            cluster_id=spec.cluster_id,
            application_names=apps or None,
            component_names=components if components and all(t.component for t in targets) else None,
            max_results=100,
        )
        await self.services.limiter.acquire(self.limiter_key)
        try:
            async with asyncio.timeout(self.services.call_timeout):
                instances = [
                    InstanceState(i.application_name, i.component_name, i.node_id, i.component_instance_state)
                    async for i in self.services.emr.iter_component_instances(
                        request, credentials=self.provider
                    )
                ]
        except (EmrError, CredentialsError, TimeoutError) as exc:
            error = call_error(exc)
            self._count("ListComponentInstances", error)
            logger.debug("%s: no progress this time: %s", self.ref, error.code)
            return None
        self.services.metrics.api_calls.labels(action="ListComponentInstances", code="OK").inc()
        return self.tracker.observe(instances)


def _from_ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value else None


def _first_error(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"spec.{where}: {first.get('msg', 'invalid')}"


class Supervisor:
    """Keeps one ``Worker`` task per ServiceAction that needs one (see the module docstring)."""

    def __init__(self, services: Services) -> None:
        self.book = queue.Book()
        # The workers read this supervisor's queue (a copy: the caller's Services stays untouched).
        self.services = replace(services, queue=self.book)
        self._workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        self._clusters: dict[str, queue.ClusterKey] = {}
        self._stopping = False
        #: The startup barrier (see the module docstring).
        self.settled = asyncio.Event()
        #: uids seen so far, kept only until the barrier is set.
        self._seen: set[str] = set()
        self._last_new = 0.0
        self._settler: asyncio.Task[None] | None = None
        if services.settle_seconds <= 0 or services.settle_max <= 0:
            self.settled.set()

    @property
    def active(self) -> int:
        return len(self._workers)

    def observe(self, event_type: str | None, body: Body) -> None:
        """Feed one watch event (``ADDED``/``MODIFIED``/``DELETED``/None for the initial listing)."""
        meta = _meta(body)
        uid = str(meta.get("uid", ""))
        if not uid:
            return
        key = self._cluster_of(body)
        if not self.settled.is_set():
            self._settling(uid)
        if event_type == "DELETED":
            self.services.metrics.saw(uid, None)
            found = self._workers.pop(uid, None)
            if found is not None:
                found[1].cancel()
            self._clusters.pop(uid, None)
            self.book.forget(uid)
            self._wake_cluster(key)
            return
        self.book.observe(body)
        phase = (body.get("status") or {}).get("phase")
        self.services.metrics.saw(uid, str(phase) if phase else "New")
        if key is not None:
            self._clusters[uid] = key
        found = self._workers.get(uid)
        if found is not None:
            found[0].update(body)
        elif needs_worker(body) and not self._stopping:
            self._start(uid, body)
        self._wake_cluster(key, except_uid=uid)

    def _settling(self, uid: str) -> None:
        """Note one event before the barrier is set; the first one starts the settle timer."""
        if uid in self._seen:
            return  # a known object changing does not prolong the listing
        self._seen.add(uid)
        self._last_new = asyncio.get_running_loop().time()
        if self._settler is None:
            self._settler = asyncio.create_task(self._settle(), name="emrops settle")

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        latest = loop.time() + self.services.settle_max
        while True:
            until = min(self._last_new + self.services.settle_seconds, latest)
            if loop.time() >= until:
                break
            await asyncio.sleep(until - loop.time())
        logger.debug("initial listing settled: %d objects seen", len(self._seen))
        self.settled.set()
        self._seen = set()

    def _cluster_of(self, body: Body) -> queue.ClusterKey | None:
        spec = body.get("spec") or {}
        region, cluster = spec.get("regionId"), spec.get("clusterId")
        return (str(region), str(cluster)) if region and cluster else None

    def _wake_cluster(self, key: queue.ClusterKey | None, except_uid: str = "") -> None:
        if key is None:
            return
        for uid, (worker, _task) in self._workers.items():
            if uid != except_uid and self._clusters.get(uid) == key:
                worker.wake()

    def _start(self, uid: str, body: Body) -> None:
        worker = Worker(self.services, body, self.settled)
        task = asyncio.create_task(worker.run(), name=f"emrops worker {_ref(body)}")
        self._workers[uid] = (worker, task)
        task.add_done_callback(lambda t: self._done(uid, worker, t))

    def _done(self, uid: str, worker: Worker, task: asyncio.Task[None]) -> None:
        current = self._workers.get(uid)
        if current is not None and current[0] is worker:
            del self._workers[uid]
        if task.cancelled() or self._stopping:
            return
        if task.exception() is not None:
            logger.error("%s: worker ended with an error", worker.ref, exc_info=task.exception())
        # An event may have arrived while the worker was finishing (a re-run annotation).
        if uid not in self._workers and needs_worker(worker.body):
            self._start(uid, worker.body)

    async def stop(self) -> None:
        """Cancel every worker and wait for them (operator shutdown)."""
        self._stopping = True
        tasks = [task for _worker, task in self._workers.values()]
        if self._settler is not None:
            tasks.append(self._settler)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
