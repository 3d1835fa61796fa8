"""Workers: one asyncio task per ServiceAction whose run needs attention.

The ``Supervisor`` is fed every watch event (``observe``), the initial listing included. It starts
a ``Worker`` for an object whose run needs attention (``machine.needs_attention``), hands it newer
bodies, wakes queued workers when something changes on their cluster, and cancels a worker when
its object is deleted. It also keeps the per-cluster queue (a ``queue.Book`` of the objects that
hold a cluster, which the workers read as ``Services.queue``). Finished objects cost nothing: no
task, no timer, no finalizer, no queue entry.

Startup ordering: the first queue decision should see every object that already exists, so the
supervisor holds a ``settled`` barrier, set once no new object has been seen for
``Services.settle_seconds`` after the first event (or ``settle_max`` after it at the latest); a
worker waits for the barrier before its first queue check. A new object's acceptance is folded
into its first write (``machine``'s docstring), so one that may go writes nothing before the
barrier (its first write is the intent, or ``Queued``); one waiting at rest (suspended, scheduled)
writes that at once. When a new object's intent would wait after the gates (no rate-limiter token
for it yet, every submission slot taken), the worker writes its acceptance (``machine.accept``)
first, so no object waits without a status.

A worker loops: read the status, ask the state machine (``machine.decide``), perform the decision
(a conditional status write, an EMR call, a wait), repeat, and exit once nothing is left to do. A
step only notes the wait it decided on; the loop sleeps it once the step's frames are gone, so a
run waiting for its next poll holds its worker and one body, not the decisions of its last step.
Three rules keep every run's RunApplicationAction to one call, whatever the interleaving:

1. Every status write goes through ``kube.write_status`` conditioned on the resourceVersion of
   the body the decision was made from (its *basis*), never of a newer body that arrived while
   the worker waited: a 409 means "re-read and decide again".
2. The rate limiter's token and a submission slot are taken before the Submit decision is made,
   so the intent (and its ``submittedAt``) is written just before the call, not before a long
   wait, and a run waiting for its turn holds no decided intent.
3. After the intent wins, the queue is checked again from a consistent read of the cluster's
   objects (``ObjectStore.list_cluster``): an overlapping run the watch had not shown yet makes
   the worker withdraw its intent instead of calling (``machine.Blocked``).

A worker stops for good when its object is gone (404, or another object under the same name):
the supervisor then drops it from the queue even if the DELETED event never arrives (a re-list
after 410 Gone, or an object whose label was removed under ``--label-selector`` and whose
events no longer reach us). A worker that heard nothing of its object for ``exists_recheck``
re-reads it before its next step. On shutdown (``Supervisor.stop``) no new intent is written, and a call
already in flight is allowed ``Services.shutdown_grace`` seconds to finish and be recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import pydantic

from emrops.acs.codes import Classification
from emrops.api.conditions import stalled_in
from emrops.api.constants import ACKNOWLEDGED_AT, RUN_REQUESTED_AT
from emrops.api.reasons import Reason
from emrops.api.spec import ServiceActionSpec
from emrops.api.status import Phase, PlanStatus, ProgressStatus, RunStatus, format_time, parse_time
from emrops.api.targets import targets_of
from emrops.controller import credentials, machine, queue, tenancy
from emrops.controller.apiserver import priority
from emrops.controller.call_errors import call_error, naming_credentials
from emrops.controller.kube import Body, Conflict, Gone, ObjectStore, SecretUnreadable, write_status
from emrops.controller.metrics import Metrics
from emrops.controller.plan import build_plan
from emrops.controller.progress import InstanceState, ProgressTracker, trackable
from emrops.controller.ratelimit import RateLimiter
from emrops.controller.tasks import spawn
from emrops.emr.credentials import CredentialsProvider
from emrops.emr.errors import CredentialsError, EmrError
from emrops.emr.models import (
    ComponentInstance,
    GetOperationRequest,
    GetOperationResponse,
    ListComponentInstancesRequest,
    ListNodesRequest,
    Node,
    OperationState,
    RunApplicationActionRequest,
    RunApplicationActionResponse,
)

logger = logging.getLogger("emrops.controller")

T = TypeVar("T")


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

    def iter_nodes(
        self, request: ListNodesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[Node]: ...


EmitFn = Callable[[Body, machine.Event], None]
QueueView = Callable[[queue.ClusterKey], Iterable[queue.QueueEntry]]
Reconcile = Callable[[queue.ClusterKey, list[dict[str, Any]]], None]


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
    #: On shutdown, how long a RunApplicationAction in flight may take to finish and be recorded.
    shutdown_grace: float = 20.0
    #: Longest time from writing an intent to starting its call. Past it the intent is withdrawn:
    #: another replica marks an unanswered intent Unknown after the in-flight grace, and the call
    #: (``call_timeout``) must fit inside that grace. ``app`` derives it from the two.
    intent_budget: float = 8.0
    #: Submissions (intent write, consistent re-check, RunApplicationAction, its record) under way
    #: at once. The intent budget's clock starts at the intent write, so a burst of a thousand
    #: runs must queue here, before it, and not for apiserver connections after it: otherwise
    #: every intent outlives its budget while waiting behind the others' writes, is withdrawn and
    #: written again, and a slow apiserver turns the burst into a livelock (4 of 1,000 submitted
    #: in 300 s in one measured run). Twice the apiserver pool keeps it busy while some wait on EMR.
    submissions: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))
    #: A worker that heard nothing of its object for this long re-reads it before its next step,
    #: so a deletion the watch never reported (a re-list after 410, a label removed under
    #: --label-selector) stops it within this bound instead of when its operation ends.
    exists_recheck: float = 60.0
    #: The per-cluster queue as the workers read it; the ``Supervisor`` puts its ``queue.Book`` here.
    queue: QueueView = lambda _key: ()
    #: Feeds a consistent listing of one cluster's objects back into the queue (the supervisor's).
    reconcile: Reconcile = lambda _key, _bodies: None
    #: Startup barrier: the initial listing is over once no new object was seen for this long...
    settle_seconds: float = 1.0
    #: ... or this long after the first event at the latest (a stream of creations never ends it).
    settle_max: float = 15.0
    clock: Callable[[], datetime] = _utc_now
    rng: Callable[[], float] = random.random
    #: The tenancy policy in force, asked before every step of a run not yet submitted (the
    #: operator's is ``tenancy_file.PolicyFile.current``). The default lends the operator's
    #: identity to no namespace.
    tenancy_policy: Callable[[], tenancy.TenancyPolicy] = lambda: tenancy.CLOSED


#: Phases of a run that has not called RunApplicationAction (yet): the tenancy policy may refuse it.
_UNSUBMITTED = frozenset({Phase.PENDING, Phase.QUEUED, Phase.SUSPENDED, Phase.SCHEDULED})
#: Phases whose waits a change on the cluster (or of the object's own spec) cuts short.
_WAKEABLE = frozenset({Phase.PENDING, Phase.QUEUED, Phase.SUSPENDED, Phase.SCHEDULED})


def _run_start(status: RunStatus) -> datetime | None:
    """When the run could first be submitted: its acceptance, or its approval when later."""
    accepted, approved = parse_time(status.start_time), parse_time(status.approved_at)
    if accepted is None or approved is None:
        return accepted or approved
    return max(accepted, approved)


def _meta(body: Body) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = body.get("metadata") or {}
    return meta


def _ref(body: Body) -> str:
    meta = _meta(body)
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _annotation(body: Body, key: str) -> str | None:
    value = (_meta(body).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def needs_worker(body: Body) -> bool:
    generation = _meta(body).get("generation")
    return machine.needs_attention(
        RunStatus.from_dict(body.get("status")),
        _annotation(body, RUN_REQUESTED_AT),
        _annotation(body, ACKNOWLEDGED_AT),
        generation if isinstance(generation, int) else None,
    )


def _fresh(body: Body) -> bool:
    """A new object: no run accepted yet (no status phase)."""
    status = body.get("status") or {}
    return not status.get("phase")


def _spec_time(spec: Mapping[str, Any], key: str) -> datetime | None:
    value = spec.get(key)
    return parse_time(value) if isinstance(value, str) else None


def _version(body: Body) -> int | None:
    try:
        return int(_meta(body)["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _newer(candidate: Body, current: Body) -> bool:
    """Whether ``candidate`` is more recent than ``current``.

    resourceVersions are opaque by contract but etcd revisions (integers) in practice; when they
    are not integers, take the candidate. Correctness never rests on this: every write is
    conditioned on the body its decision came from, so a stale body only costs a 409.

    The same version again is not newer: it is the same object state. The watch event of our own
    status write carries the version the write returned, and keeping the body we hold instead of
    the event's copy keeps one copy per object, not two (memory with thousands of runs in flight).
    """
    new, old = _version(candidate), _version(current)
    if new is None or old is None:
        found = _meta(candidate).get("resourceVersion")
        return found is None or found != _meta(current).get("resourceVersion")
    return new > old


class Worker:
    """Drives one ServiceAction's run (see the module docstring)."""

    def __init__(
        self,
        services: Services,
        body: Body,
        settled: asyncio.Event | None = None,
        draining: asyncio.Event | None = None,
    ) -> None:
        self.services = services
        #: Set once the supervisor has seen the initial listing; no queue check before that.
        self.settled = settled
        #: Set when the operator shuts down: no new intent is written.
        self.draining = draining or asyncio.Event()
        self.body: Body = body
        self.poll_interval: float | None = None
        self.creds: credentials.Resolved | None = None
        self.tracker: ProgressTracker | None = None
        #: The object is gone (404): the worker stopped for good.
        self.gone = False
        #: Between the intent write and the recording of RunApplicationAction's answer.
        self.in_flight = False
        self.wakeable = False
        #: Resolved to cut a sleep short; exists only while the worker sleeps (an ``asyncio.Event``
        #: per worker costs a deque of about 600 bytes, thousands of times over).
        self._waiter: asyncio.Future[None] | None = None
        #: The wait the last step decided on (seconds, wakeable), slept by ``run`` itself.
        self._pause: tuple[float, bool] | None = None
        #: Loop time of the last consistent check of a queue the book says we wait in.
        self._queue_checked = float("-inf")
        #: Loop time we last had proof the object exists (a watch event, a write, a read).
        self._seen_at = asyncio.get_running_loop().time()
        #: The object as our intent write returned it (the baseline of the queue re-check); held
        #: only while that submission is under way.
        self._written: Body | None = None
        #: The id of an intent we wrote (or tried to) and have not called for: ours to withdraw.
        self._uncalled: str | None = None
        #: Intents withdrawn in a row for another reason than the queue (the retry backs off).
        self._withdrawals = 0
        #: When this worker first looked at its object while it was new (no phase yet): the run's
        #: acceptance, which its first write records as ``startTime`` (``machine.Context``).
        self._accepted_at: datetime | None = None
        #: Holds one of ``Services.submissions`` (taken before an intent is decided, released
        #: once the submission is over or the decision is not to submit).
        self._slot = False

    # --- fed by the supervisor ------------------------------------------------------------

    def update(self, body: Body) -> None:
        self._seen_at = asyncio.get_running_loop().time()
        if _newer(body, self.body):
            spec_changed = _meta(body).get("generation") != _meta(self.body).get("generation")
            self.body = body
            if spec_changed:
                # spec.suspend set false (the only spec change there is): act on the approval at
                # once, even out of a Retry wait (a wake-up only makes the worker look again).
                self._cut_short()

    def wake(self) -> None:
        if self.wakeable:
            self._cut_short()

    def _cut_short(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter)

    @property
    def ref(self) -> str:
        return _ref(self.body)

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        try:
            while not self.draining.is_set():
                self._pause = None
                failed = False
                try:
                    if await self._step():
                        return
                    failures = 0
                except (Gone, asyncio.CancelledError):
                    raise
                except Exception:
                    failures += 1
                    delay = min(60.0, 2.0**failures)
                    logger.exception("%s: unexpected error; trying again in %.0fs", self.ref, delay)
                    self._pause, failed = (delay, False), True
                # The wait is slept here, outside the step: the step's frames (the body it decided
                # from, its decisions and their rendered statuses: about 10 KB of pydantic models
                # and dicts per run, measured) are gone while thousands of runs wait for a poll.
                if self._pause is not None and not self.draining.is_set():
                    await self._sleep(*self._pause)
                if failed:
                    await self._refresh()
        except Gone:
            logger.info("%s: the object is gone; its worker stops", self.ref)
            self.gone = True

    def _context(self, basis: Body) -> machine.Context:
        meta = _meta(basis)
        now = self.services.clock()
        spec = basis.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        return machine.Context(
            status=RunStatus.from_dict(basis.get("status")),
            now=now,
            created_at=parse_time(meta.get("creationTimestamp")) or now,
            generation=meta.get("generation"),
            rerun_value=_annotation(basis, RUN_REQUESTED_AT),
            ack_value=_annotation(basis, ACKNOWLEDGED_AT),
            deadline_seconds=deadline if isinstance(deadline, int) else None,
            jitter=self.services.rng(),
            poll_interval=self.poll_interval,
            policy=self.services.policy,
            suspend=spec.get("suspend") is True,
            not_before=_spec_time(spec, "notBefore"),
            not_after=_spec_time(spec, "notAfter"),
            accepted_at=self._accepted_at,
        )

    async def _step(self) -> bool:
        """One decision, performed. True when the worker is done."""
        if asyncio.get_running_loop().time() - self._seen_at > self.services.exists_recheck:
            await self._refresh()  # a deletion the watch never reported stops us here (Gone)
        basis = self.body
        if self._accepted_at is None and _fresh(basis):
            self._accepted_at = self.services.clock()
        if self._uncalled is not None and await self._withdraw_uncalled(basis):
            return False
        refused = self._refused(basis)
        if refused is not None:
            return await self._apply(refused, basis)
        decision = machine.decide(self._context(basis), machine.Look())
        if isinstance(decision, machine.Gate):
            if self.settled is not None and not self.settled.is_set():
                await self.settled.wait()
                return False  # decide again from the body as it is now
            basis, decision = await self._through_gates(basis)
        match decision:
            case machine.Nothing():
                return True
            case machine.Submit():
                await self._submit(decision, basis)
                return False
            case machine.Poll():
                await self._poll()
                return False
            case machine.Plan():
                await self._plan()
                return False
            case machine.Finish() | machine.Stall():
                return await self._apply(decision, basis)
            case machine.Wait():
                if await self._apply(decision, basis):
                    self._after(decision)
                return False
        logger.debug("%s: %s", self.ref, decision)
        return False

    def _refused(self, basis: Body) -> machine.Decision | None:
        """Failed, before any EMR call, for a run the tenancy policy does not allow (else None).

        Asked at every step of a run not yet submitted, so neither its plan, nor its Secret, nor
        the intent write come first, and a revocation stops runs still waiting. A run already
        submitted is followed to its end (GetOperation only): its operation runs whatever we do.
        """
        phase = RunStatus.from_dict(basis.get("status")).phase
        if phase is not None and phase not in _UNSUBMITTED:
            return None
        spec = basis.get("spec") or {}
        found = tenancy.refusal(
            self.services.tenancy_policy(),
            str(_meta(basis).get("namespace", "")),
            str(spec.get("regionId", "")),
            str(spec.get("clusterId", "")),
            secret=spec.get("credentialsSecretRef") is not None,
        )
        if found is None:
            return None
        reason = Reason.TENANCY_POLICY_INVALID if found.invalid else Reason.TENANCY_DENIED
        return machine.reject(self._context(basis), reason, found.message)

    async def _withdraw_uncalled(self, basis: Body) -> bool:
        """Take back an intent of ours that no call followed (its write's answer was lost, say).

        Left alone, it would look like a call in flight to everyone, and become Unknown after the
        in-flight grace although we know nothing was sent. True when a withdrawal was written.
        """
        intent_id, self._uncalled = self._uncalled, None
        st = RunStatus.from_dict(basis.get("status"))
        if st.phase is not Phase.SUBMITTING or st.operation_id or st.intent_id != intent_id:
            return False
        why = "the answer to the intent write was lost; RunApplicationAction was not called"
        blocked = machine.Blocked(st.run or 1, st.attempts or 1, why=why, intent_id=intent_id or "")
        await self._record_and_pause(blocked)
        return True

    async def _through_gates(self, basis: Body) -> tuple[Body, machine.Decision]:
        """Check credentials and the queue; when both let us go, take a token, then decide."""
        try:
            gates = await self._gates(basis)
        except pydantic.ValidationError as exc:
            ctx = self._context(basis)
            return basis, machine.reject(
                ctx, Reason.INVALID_SPEC, f"The spec cannot be read: {_first_error(exc)}"
            )
        if gates == machine.Gates() and self.creds is not None:
            if _fresh(basis) and not self._can_submit_at_once(self.creds):
                # A new object whose intent would wait (for a token or a submission slot): write
                # its acceptance first, so it does not wait without a status (a tool reading
                # kstatus would take it for done), then come back through the gates.
                return basis, machine.accept(self._context(basis))
            # The token and the submission slot first, then the decision: the intent is written
            # from the object as it is after the waits, and its submittedAt is the moment of the
            # call. In a burst, thousands of runs wait here holding their body alone, not a
            # decided intent each (memory with thousands of runs in flight).
            await self.services.limiter.acquire(self.creds.limiter_key)
            await self.services.submissions.acquire()
            self._slot = True
            decision: machine.Decision | None = None
            try:
                basis = self.body
                gates = machine.Gates(intent_id=uuid.uuid4().hex[:16])
                decision = machine.decide(self._context(basis), gates)
            finally:
                if not isinstance(decision, machine.Submit):
                    self._release_slot()
            return basis, decision  # a Submit goes straight to ``_submit``, which releases the slot
        return basis, machine.decide(self._context(basis), gates)

    def _release_slot(self) -> None:
        if self._slot:
            self._slot = False
            self.services.submissions.release()

    def _can_submit_at_once(self, creds: credentials.Resolved) -> bool:
        """Whether an intent decided now would be written without waiting: a submission slot is
        free and the rate limiter holds a token for these credentials (nothing yields between
        this check and taking them, so the answer still holds then)."""
        if self.services.submissions.locked():
            return False
        bucket = self.services.limiter.bucket(creds.limiter_key)
        return bucket is None or bucket.tokens() >= 1.0

    def _after(self, decision: machine.Wait) -> None:
        """Note the wait ``decision`` asks for; ``run`` sleeps it once the step is over."""
        if decision.poll_interval is not None:
            self.poll_interval = decision.poll_interval
        phase = RunStatus.from_dict(self.body.get("status")).phase
        wakeable = not isinstance(decision, machine.Retry) and phase in _WAKEABLE
        self._pause = (decision.after, wakeable)

    async def _sleep(self, seconds: float, wakeable: bool) -> None:
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _resolve, waiter)
        self.wakeable = wakeable
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self.wakeable = False

    async def _refresh(self) -> None:
        meta = _meta(self.body)
        found = await self.services.store.get(str(meta["namespace"]), str(meta["name"]))
        if _meta(found).get("uid") != meta.get("uid"):
            # Deleted and created again under the same name: another object, not ours to drive.
            raise Gone(f"{meta.get('namespace')}/{meta.get('name')} (uid {meta.get('uid')})")
        self.update(found)

    # --- writing --------------------------------------------------------------------------

    async def _apply(self, decision: machine.Decision, basis: Body, *, post: bool = True) -> bool:
        """Write the decision's status over ``basis``, post its Event; False when we lost a race."""
        if decision.status is None:
            if post:
                self._post(decision.event)
            return True
        try:
            written = await write_status(self.services.store, basis, decision.status, self.services.clock())
        except Conflict:
            logger.debug("%s: changed under us; re-reading", self.ref)
            await self._refresh()
            return False
        if written is None:
            return True
        before = RunStatus.from_dict(basis.get("status"))
        self._written = written
        self.update(written)
        if post:
            self._post(decision.event)
        self._account(before, decision.status, isinstance(decision, machine.Retry))
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

    def _account(self, before: RunStatus, after: RunStatus, retry: bool) -> None:
        metrics = self.services.metrics
        metrics.saw(
            str(_meta(self.body).get("uid", "")),
            after.phase.value if after.phase else None,
            stalled=stalled_in(self.body.get("status")),  # the written status, conditions rendered
        )
        action = str((self.body.get("spec") or {}).get("actionName", ""))
        if retry and after.phase is Phase.PENDING:
            metrics.retries.labels(reason=after.reason or "Unknown").inc()
        if after.operation_id and not before.operation_id:
            # Only this write can record it (a re-read never calls _account), and a new run
            # starts without one: once per run.
            started = _run_start(after)
            if started is not None:
                seconds = max(0.0, (self.services.clock() - started).total_seconds())
                metrics.submit_latency.labels(action=action).observe(seconds)
        if after.finished and not before.finished:
            start = parse_time(after.submitted_at) or parse_time(after.start_time)
            if start is not None and after.phase is not None:
                seconds = max(0.0, (self.services.clock() - start).total_seconds())
                metrics.operation_duration.labels(action=action, phase=after.phase.value).observe(seconds)

    async def _record(self, observation: machine.Observation) -> machine.Decision:
        """Decide from ``observation`` and write it, retrying the write until it lands.

        After RunApplicationAction this write carries the operationId: losing it would turn a
        known outcome into Unknown, so conflicts and API errors are retried, not given up on.
        """
        delay = 0.5
        while True:
            basis = self.body
            decision = machine.decide(self._context(basis), observation)
            if isinstance(decision, machine.Drop):
                logger.info("%s: result dropped: %s", self.ref, decision.why)
                return decision
            try:
                if await self._apply(decision, basis):
                    return decision
            except (Gone, asyncio.CancelledError):
                raise
            except Exception:
                logger.exception(
                    "%s: could not record %s; retrying in %.1fs", self.ref, type(observation).__name__, delay
                )
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                try:
                    await self._refresh()
                except (Gone, asyncio.CancelledError):
                    raise
                except Exception:
                    logger.debug("%s: re-read failed too", self.ref, exc_info=True)

    async def _record_and_pause(self, observation: machine.Observation) -> None:
        decision = await self._record(observation)
        if isinstance(decision, machine.Wait):
            self._after(decision)

    # --- gates ----------------------------------------------------------------------------

    async def _gates(self, basis: Body) -> machine.Gates:
        """Credentials first (a run that cannot start must not hold the queue), then the queue."""
        try:
            await self._credentials()
        except (SecretUnreadable, CredentialsError) as exc:
            return machine.Gates(credentials_problem=str(exc))
        found = queue.entry_of(basis)
        if found is None:
            return machine.Gates()
        key, me = found
        waiting = queue.blockers(me, self.services.queue(key))
        if waiting and self._queue_check_due():
            # The book is fed by a watch that can miss a DELETED event: confirm the wait from a
            # consistent read now and then, so a vanished run cannot hold the queue forever.
            self.services.reconcile(key, await self.services.store.list_cluster(*key))
            waiting = queue.blockers(me, self.services.queue(key))
        return machine.Gates(waiting_for=waiting)

    def _queue_check_due(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._queue_checked < self.services.policy.queue_recheck:
            return False
        self._queue_checked = now
        return True

    async def _credentials(self) -> credentials.Resolved:
        if self.creds is None:
            self.creds = await credentials.resolve(
                self.services.store,
                str(_meta(self.body).get("namespace")),
                ServiceActionSpec.from_body(self.body),
                self.services.default_credentials,
                provider_seconds=self.services.credentials_timeout,
            )
        return self.creds

    async def _recheck(self, written: Body, run: int, attempt: int) -> machine.Blocked | None:
        """The queue from a consistent read, after our intent was written: None when we may go."""
        found = queue.entry_of(written)
        if found is None:
            return None
        key, me = found
        try:
            listing = await self.services.store.list_cluster(*key)
        except (Gone, asyncio.CancelledError):
            raise
        except Exception as exc:
            logger.warning("%s: could not re-check the queue: %s", self.ref, type(exc).__name__)
            return machine.Blocked(run, attempt, why=f"the queue re-check failed: {type(exc).__name__}")
        self.services.reconcile(key, listing)
        mine = [b for b in listing if _meta(b).get("uid") == me.uid]
        if not mine:
            raise Gone(self.ref)  # deleted since the intent: nobody wants the call any more
        if _version(mine[0]) != _version(written):
            # Someone changed the object after our intent (another replica declared it Unknown,
            # a person asked for a new run...): that intent is no longer the status to act on.
            return machine.Blocked(run, attempt, why="the object changed after the intent was written")
        waiting = queue.blockers(me, queue.entries(listing, key))
        return machine.Blocked(run, attempt, waiting_for=waiting) if waiting else None

    # --- calls ----------------------------------------------------------------------------

    async def _call(
        self, action: str, call: Callable[[], Awaitable[T]], *, token: bool = True
    ) -> T | machine.CallError:
        """One EMR call: a limiter token, the overall timeout, error mapping, metrics."""
        creds = self.creds
        assert creds is not None, "credentials are resolved before any call"
        if token:
            await self.services.limiter.acquire(creds.limiter_key)
        try:
            async with asyncio.timeout(self.services.call_timeout):
                result = await call()
        except (EmrError, CredentialsError, TimeoutError) as exc:
            error = naming_credentials(call_error(exc, timeout=self.services.call_timeout), creds.source)
            metrics = self.services.metrics
            metrics.api_calls.labels(action=action, code=error.code).inc()
            if error.throttling:
                metrics.throttles.labels(action=action).inc()
                self.services.limiter.throttled(creds.limiter_key, error.retry_after)
            return error
        self.services.metrics.api_calls.labels(action=action, code="OK").inc()
        return result

    async def _submit(self, decision: machine.Submit, basis: Body) -> None:
        intent = decision.status
        assert intent is not None and self.creds is not None
        if self.draining.is_set():
            self._release_slot()
            return  # shutting down: no new submissions
        run, attempt, intent_id = intent.run or 1, intent.attempts or 1, intent.intent_id or ""
        try:
            if not self._slot:
                await self.services.submissions.acquire()
                self._slot = True
            if self.draining.is_set():
                return
            with priority():  # its apiserver requests go ahead of other objects' (apiserver.py)
                after = await self._submit_now(decision, basis, run, attempt, intent_id)
        finally:
            self._release_slot()
        if isinstance(after, machine.Wait) and not self.draining.is_set():
            self._after(after)

    async def _submit_now(
        self, decision: machine.Submit, basis: Body, run: int, attempt: int, intent_id: str
    ) -> machine.Decision | None:
        """Write the intent, re-check, call and record; the decision that follows (None: lost the race)."""
        self.in_flight = True
        try:
            # Logged before the write, so a log that ends here after a crash covers every run that
            # may have been left in Submitting (the audit trail for an Unknown phase).
            logger.info("%s: Submitting intent for run %s attempt %s", self.ref, run, attempt)
            started = asyncio.get_running_loop().time()
            self._uncalled = intent_id  # until the call goes out: if the write's answer is lost too
            if not await self._apply(decision, basis, post=False):
                self._uncalled = None
                return None  # another writer won (or the object changed): decide again from what is there
            assert self._written is not None
            blocked = await self._recheck(self._written, run, attempt)
            if blocked is None and self.draining.is_set():
                blocked = machine.Blocked(run, attempt, why="the operator is shutting down")
            outside = machine.window_problem(self._context(self._written))
            if blocked is None and outside is not None:
                blocked = machine.Blocked(run, attempt, why=outside)  # the next look ends the run
            if blocked is None and asyncio.get_running_loop().time() - started > self.services.intent_budget:
                # Another replica may soon take this intent for a lost call and mark it Unknown
                # (after the in-flight grace); a call now could land after that. Try again instead.
                blocked = machine.Blocked(run, attempt, why="too long between the intent and the call")
            if blocked is not None:
                logger.info("%s: withdrawing the intent: %s", self.ref, blocked.waiting_for or blocked.why)
                if not blocked.waiting_for:
                    self._withdrawals += 1
                blocked = replace(blocked, intent_id=intent_id, streak=self._withdrawals)
                self._uncalled = None
                after = await self._record(blocked)
            else:
                self._uncalled = None
                self._withdrawals = 0
                self._post(decision.event)
                after = await self._record(await self._run_action(run, attempt))
        finally:
            self.in_flight = False
            self._written = None  # self.body is as recent: no second copy kept for the run's rest
        return after

    async def _run_action(self, run: int, attempt: int) -> machine.Observation:
        assert self.creds is not None
        request = ServiceActionSpec.from_body(self.body).to_request()
        provider = self.creds.provider
        # The token was taken before the intent was decided (``_through_gates``).
        result = await self._call(
            "RunApplicationAction",
            lambda: self.services.emr.run_application_action(request, credentials=provider),
            token=False,
        )
        if isinstance(result, machine.CallError):
            return machine.Refused(run=run, attempt=attempt, error=result)
        self.tracker = None
        self.poll_interval = None
        return machine.Accepted(
            run=run,
            attempt=attempt,
            operation_id=result.operation_id,
            request_id=result.request_id,
            abn_instances=tuple((a.node_id, a.node_name) for a in result.abn_instances),
        )

    async def _poll(self) -> None:
        try:
            creds = await self._credentials()
        except (SecretUnreadable, CredentialsError) as exc:
            error = machine.CallError(
                Classification.TERMINAL, Reason.CREDENTIALS_MISSING, str(exc), Reason.CREDENTIALS_MISSING
            )
            await self._record_and_pause(machine.PollFailed(error))
            return
        status = RunStatus.from_dict(self.body.get("status"))
        spec = ServiceActionSpec.from_body(self.body)
        request = GetOperationRequest(
            region_id=spec.region_id, cluster_id=spec.cluster_id, operation_id=status.operation_id or ""
        )
        sent_at = self.services.clock()
        result = await self._call(
            "GetOperation", lambda: self.services.emr.get_operation(request, credentials=creds.provider)
        )
        observation: machine.Observation
        if isinstance(result, machine.CallError):
            if result.classification is Classification.TERMINAL:
                self.creds = None  # re-read the Secret next time: it may have been fixed
            observation = machine.PollFailed(result, sent_at=sent_at)
        else:
            op = result.operation
            view = machine.OperationView(
                operation_id=op.operation_id,
                state=op.operation_state,
                start_time=_from_ms(op.start_time),
                end_time=_from_ms(op.end_time),
                reason_code=op.state_change_reason.code if op.state_change_reason else None,
                reason_message=op.state_change_reason.message if op.state_change_reason else None,
            )
            following = machine.following(status)
            in_progress = view.state is OperationState.IN_PROGRESS
            progress = await self._progress(spec) if in_progress and not following else None
            observation = machine.Polled(view, progress, sent_at=sent_at)
        await self._record_and_pause(observation)

    async def _progress(self, spec: ServiceActionSpec) -> ProgressStatus | None:
        """Best effort: one ListComponentInstances listing of the targets; None when unavailable."""
        creds = self.creds
        if not trackable(spec.action_name) or creds is None:
            return None
        if self.tracker is None:
            self.tracker = ProgressTracker(spec.action_name, targets_of(spec.component_instance_selector))
        request = _instances_request(spec)

        async def listing() -> list[InstanceState]:
            return [
                InstanceState(i.application_name, i.component_name, i.node_id, i.component_instance_state)
                async for i in self.services.emr.iter_component_instances(request, credentials=creds.provider)
            ]

        result = await self._call("ListComponentInstances", listing)
        if isinstance(result, machine.CallError):
            logger.debug("%s: no progress this time: %s", self.ref, result.code)
            return None
        return self.tracker.observe(result)

    async def _plan(self) -> None:
        """Resolve the suspended run's plan from ListComponentInstances and ListNodes (no action)."""
        status = RunStatus.from_dict(self.body.get("status"))
        run = status.run or 1
        now = self.services.clock()
        try:
            spec = ServiceActionSpec.from_body(self.body)
            creds = await self._credentials()
        except pydantic.ValidationError as exc:
            await self._record_and_pause(machine.Planned(run, PlanStatus(run=run, error=_first_error(exc))))
            return
        except (SecretUnreadable, CredentialsError) as exc:
            self.creds = None
            await self._record_and_pause(machine.Planned(run, PlanStatus(run=run, error=str(exc))))
            return
        request = _instances_request(spec)
        nodes_request = ListNodesRequest(
            region_id=spec.region_id, cluster_id=spec.cluster_id, max_results=100
        )

        async def instances() -> list[InstanceState]:
            return [
                InstanceState(
                    i.application_name, i.component_name, i.node_id, i.component_instance_state, i.node_name
                )
                async for i in self.services.emr.iter_component_instances(request, credentials=creds.provider)
            ]

        async def nodes() -> dict[str, str | None]:
            return {
                n.node_id: n.node_state
                async for n in self.services.emr.iter_nodes(nodes_request, credentials=creds.provider)
            }

        listed = await self._call("ListComponentInstances", instances)
        states = await self._call("ListNodes", nodes) if not isinstance(listed, machine.CallError) else listed
        plan: PlanStatus
        if isinstance(listed, machine.CallError) or isinstance(states, machine.CallError):
            error = listed if isinstance(listed, machine.CallError) else states
            assert isinstance(error, machine.CallError)
            plan = PlanStatus(run=run, resolved_at=format_time(now), error=f"{error.code}: {error.message}")
        else:
            plan = build_plan(spec, listed, states, run=run, now=now)
        await self._record_and_pause(machine.Planned(run, plan))


def _instances_request(spec: ServiceActionSpec) -> ListComponentInstancesRequest:
    """One listing that covers every instance the spec targets (filtered further by the caller)."""
    targets = targets_of(spec.component_instance_selector)
    apps = sorted({t.application for t in targets if t.application})
    components = sorted({t.component for t in targets if t.component})
    return ListComponentInstancesRequest(
        region_id=spec.region_id,
        cluster_id=spec.cluster_id,
        application_names=apps or None,
        component_names=components if components and all(t.component for t in targets) else None,
        max_results=100,
    )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


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
        self.services = replace(services, queue=self.book, reconcile=self._reconcile)
        self._workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        self._clusters: dict[str, queue.ClusterKey] = {}
        #: The same, by cluster: waking one cluster's workers costs that cluster, not every worker
        #: (each watch event wakes its cluster; a scan of all workers made a burst quadratic). Dicts
        #: as ordered sets: a set of strings iterates in hash order, which changes with
        #: PYTHONHASHSEED, and the simulation's traces must not (nor should wake-up order).
        self._members: dict[queue.ClusterKey, dict[str, None]] = {}
        self._stopping = False
        #: Set by ``stop``: workers write no new intent.
        self.draining = asyncio.Event()
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
            self._forget(uid, key)
            found = self._workers.pop(uid, None)
            if found is not None:
                found[1].cancel()
            return
        self.book.observe(body)
        status = body.get("status") or {}
        phase = status.get("phase")
        self.services.metrics.saw(uid, str(phase) if phase else "New", stalled=stalled_in(status))
        if key is not None:
            self._place(uid, key)
        found = self._workers.get(uid)
        if found is not None:
            found[0].update(body)
        elif needs_worker(body) and not self._stopping:
            self._start(uid, body)
        self._wake_cluster(key, except_uid=uid)

    def _forget(self, uid: str, key: queue.ClusterKey | None) -> None:
        """The object is gone: it holds no queue place and counts in no metric."""
        self.services.metrics.saw(uid, None)
        self._place(uid, None)
        self.book.forget(uid)
        self._wake_cluster(key)

    def _reconcile(self, key: queue.ClusterKey, bodies: list[dict[str, Any]]) -> None:
        """Bring the book's entries for ``key`` up to a consistent listing of that cluster."""
        listed = {str(_meta(b).get("uid", "")): b for b in bodies}
        for entry in self.book(key):
            if entry.uid not in listed:
                logger.info("%s: no longer exists; dropped from the queue", entry.ref)
                self._forget(entry.uid, key)
        for body in listed.values():
            self.book.observe(body)

    def _settling(self, uid: str) -> None:
        """Note one event before the barrier is set; the first one starts the settle timer."""
        if uid in self._seen:
            return  # a known object changing does not prolong the listing
        self._seen.add(uid)
        self._last_new = asyncio.get_running_loop().time()
        if self._settler is None:
            self._settler = spawn(self._settle(), name="emrops settle")

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

    def _place(self, uid: str, key: queue.ClusterKey | None) -> None:
        """Record ``uid`` as on cluster ``key`` (None: on none, forgotten)."""
        before = self._clusters.pop(uid, None)
        if before is not None and before != key:
            members = self._members[before]
            members.pop(uid, None)
            if not members:
                del self._members[before]
        if key is not None:
            self._clusters[uid] = key
            self._members.setdefault(key, {})[uid] = None

    def _wake_cluster(self, key: queue.ClusterKey | None, except_uid: str = "") -> None:
        if key is None:
            return
        for uid in self._members.get(key, ()):
            found = self._workers.get(uid)
            if found is not None and uid != except_uid:
                found[0].wake()

    def _start(self, uid: str, body: Body) -> None:
        worker = Worker(self.services, body, self.settled, self.draining)
        task = spawn(
            worker.run(), name=f"emrops worker {_ref(body)}", done=lambda t: self._done(uid, worker, t)
        )
        self._workers[uid] = (worker, task)

    def _done(self, uid: str, worker: Worker, task: asyncio.Task[None]) -> None:
        current = self._workers.get(uid)
        if current is not None and current[0] is worker:
            del self._workers[uid]
        if task.cancelled() or self._stopping:
            return
        if worker.gone:
            # Deleted without a DELETED event reaching us (a re-list, a label removed): never
            # restart it, and let the runs it held back go.
            self._forget(uid, self._clusters.get(uid))
            return
        if task.exception() is not None:
            logger.error("%s: worker ended with an error", worker.ref, exc_info=task.exception())
        # An event may have arrived while the worker was finishing (a re-run annotation).
        if uid not in self._workers and needs_worker(worker.body):
            self._start(uid, worker.body)

    async def stop(self, grace: float | None = None) -> None:
        """Stop every worker (operator shutdown), letting RunApplicationAction calls in flight land.

        No new intent is written from now on. A worker between its intent write and the recording
        of EMR's answer gets up to ``grace`` seconds (``Services.shutdown_grace`` by default) to
        finish, so a routine restart does not turn a known outcome into Unknown; every other
        worker is cancelled at once (a cancelled poll or wait loses nothing).
        """
        self._stopping = True
        self.draining.set()
        grace = self.services.shutdown_grace if grace is None else grace
        landing = [task for worker, task in self._workers.values() if worker.in_flight]
        others = [task for worker, task in self._workers.values() if not worker.in_flight]
        if self._settler is not None:
            others.append(self._settler)
        for task in others:
            task.cancel()
        if landing:
            logger.info(
                "shutting down: waiting up to %gs for %d submission(s) in flight", grace, len(landing)
            )
            _done, late = await asyncio.wait(landing, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*landing, *others, return_exceptions=True)
        self._workers.clear()
