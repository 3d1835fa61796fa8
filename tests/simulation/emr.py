"""An in-memory EMR following the emulator's rules (``emrops/emulator``), on the virtual clock.

- RunApplicationAction creates one operation per accepted call, IN_PROGRESS for a random
  duration (some long), then COMPLETED or FAILED, rarely HUMAN_PROCESSING until a person
  resolves it. In ``strict`` seeds an overlapping IN_PROGRESS operation on the cluster is
  refused with ConcurrentModification, as the real EMR and the emulator do (targets and overlap
  from ``emrops.api.targets``); in permissive seeds EMR accepts overlaps, so only the
  controller's own exclusion keeps them apart, and the invariants see every slip.
- A per-access-key token bucket answers ``Throttling.User`` (HTTP 400) with a retry-after, as
  the emulator's gateway does.
- GetOperation does not find an operation for a short while after it was accepted
  (read-after-write lag): ResourceNotFound, HTTP 404.
- Injected faults (the fault phase only): RequestNotSent (dropped before apply), throttling,
  InvokeEcmError, ServiceUnavailable, InternalError (HTTP 500, sometimes after applying, sometimes
  with a retry-after hint), drop after apply (an operation exists but the caller only sees
  ``OutcomeUnknownError``), SignatureNonceUsed after a copy of the request already applied.

``EmrView`` is one replica incarnation's ``runner.EmrApi`` over a ``network.Link``. Every
request names its ServiceAction through ``spec.description`` (``namespace/name``), which is how
the ground truth ties an operation to an object; the controller passes it through untouched.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from emrops.acs.codes import TABLE
from emrops.api.spec import ComponentInstanceSpec, ComponentSpec, SelectorSpec
from emrops.api.targets import Target, overlap, targets_of
from emrops.emr.credentials import CredentialsProvider
from emrops.emr.errors import ApiError, OutcomeUnknownError, RequestNotSentError
from emrops.emr.models import (
    ComponentInstance,
    ComponentInstanceSelector,
    GetOperationRequest,
    GetOperationResponse,
    ListComponentInstancesRequest,
    ListNodesRequest,
    Node,
    Operation,
    OperationState,
    RunApplicationActionRequest,
    RunApplicationActionResponse,
    StateChangeReason,
)
from simulation.network import Link

T = TypeVar("T")

#: Every cluster's layout: (application, component, nodes).
LAYOUT: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("HDFS", "NameNode", ("n1",)),
    ("HDFS", "DataNode", ("n1", "n2", "n3")),
    ("YARN", "ResourceManager", ("n1",)),
    ("YARN", "NodeManager", ("n1", "n2", "n3")),
)

UNENDED = (OperationState.IN_PROGRESS, OperationState.HUMAN_PROCESSING)


def request_targets(selector: ComponentInstanceSelector) -> frozenset[Target]:
    """The targets of a request's selector, by the controller's own rule (``targets_of``)."""
    spec = SelectorSpec(
        run_action_scope=selector.run_action_scope,
        application_name=selector.application_name,
        components=tuple(
            ComponentSpec(application_name=c.application_name, component_name=c.component_name)
            for c in selector.components or ()
        ),
        component_instances=tuple(
            ComponentInstanceSpec(
                application_name=i.application_name, component_name=i.component_name, node_id=i.node_id
            )
            for i in selector.component_instances or ()
        ),
    )
    return targets_of(spec)


@dataclass
class SimOperation:
    op_id: str
    region_id: str
    cluster_id: str
    #: ``namespace/name`` of the ServiceAction (from the request's description) and its uid/run.
    ref: str
    uid: str
    run: int
    who: str
    action: str
    targets: frozenset[Target]
    created: float
    visible_at: float
    state: OperationState = OperationState.IN_PROGRESS
    ended: float | None = None
    reason_code: str | None = None
    reason_message: str | None = None
    #: When EMR's answer with this operation's id reaches the caller (if it still waits); None
    #: when there is no such answer (a drop after apply, an error) or it comes after the
    #: client's deadline.
    answered_at: float | None = None

    @property
    def unended(self) -> bool:
        return self.state in UNENDED


class EmrObserver(Protocol):
    def emr_applied(self, who: str, action: str, ref: str | None, outcome: str) -> None: ...

    def emr_accepted(self, op: SimOperation) -> None: ...

    def emr_sent(self, who: str, ref: str) -> None: ...

    def emr_polled(self, who: str, op: SimOperation, outcome: str) -> None: ...

    def emr_operation_changed(self, op: SimOperation) -> None: ...


@dataclass
class EmrFaults:
    """How often each injected fault fires on a call (0 turns injection off)."""

    rate: float = 0.0
    #: Longest read-after-write lag of GetOperation, in seconds.
    read_lag: float = 0.0


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class EmrServer:
    clock: Callable[[], float]
    epoch_ms: int
    rng: random.Random
    observer: EmrObserver
    #: Resolves ``namespace/name`` to (uid, run its status names now): the ground truth's view.
    owner_of: Callable[[str], tuple[str, int]]
    note: Callable[[str], None]
    strict: bool = True
    quota_qps: float = 10.0
    quota_burst: int = 10
    faults: EmrFaults = field(default_factory=EmrFaults)
    regions: tuple[str, ...] = ("cn-hangzhou",)
    ops: dict[str, SimOperation] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _requests: int = 0
    #: RunApplicationAction requests per ``namespace/name`` sent and not landed yet.
    in_flight: dict[str, int] = field(default_factory=dict)
    #: Operations waiting for a person (HUMAN_PROCESSING), resolved at these times.
    _humans: dict[str, float] = field(default_factory=dict)

    # --- helpers ----------------------------------------------------------------------------

    def _request_id(self) -> str:
        self._requests += 1
        return f"req-{self._requests:05d}"

    def _ms(self, t: float | None) -> int | None:
        return None if t is None else self.epoch_ms + int(t * 1000)

    def _error(self, code: str, action: str, retry_after: float | None = None) -> ApiError:
        row = TABLE[code]
        return ApiError(
            code=code,
            message=row.message.replace("%s", "simulation"),
            http_status=row.http_status,
            request_id=self._request_id(),
            retry_after=retry_after,
            action=action,
        )

    def _throttle(self, access_key_id: str, action: str) -> None:
        """The gateway's quota per access key: a token or ``Throttling.User`` with a retry-after."""
        if self.quota_qps <= 0:
            return
        now = self.clock()
        bucket = self._buckets.setdefault(access_key_id, _Bucket(float(self.quota_burst), now))
        bucket.tokens = min(float(self.quota_burst), bucket.tokens + (now - bucket.stamp) * self.quota_qps)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = max(0.001, (1.0 - bucket.tokens) / self.quota_qps)
        raise self._error("Throttling.User", action, retry_after=round(wait, 3))

    def _fault(self, menu: tuple[tuple[str, float], ...]) -> str | None:
        if self.faults.rate <= 0 or self.rng.random() >= self.faults.rate:
            return None
        total = sum(weight for _name, weight in menu)
        pick = self.rng.random() * total
        for name, weight in menu:
            pick -= weight
            if pick < 0:
                return name
        return menu[-1][0]

    # --- operations over time ----------------------------------------------------------------

    def _create(
        self,
        who: str,
        request: RunApplicationActionRequest,
        targets: frozenset[Target],
        sent_for: int | None,
    ) -> SimOperation:
        ref = request.description or ""
        uid, current = self.owner_of(ref)
        run = current if sent_for is None else sent_for
        now = self.clock()
        lag = 0.0
        if self.faults.read_lag > 0 and self.rng.random() < 0.4:
            lag = self.rng.uniform(0.2, self.faults.read_lag)
        op = SimOperation(
            op_id=f"op-{len(self.ops) + 1:04d}",
            region_id=request.region_id,
            cluster_id=request.cluster_id,
            ref=ref,
            uid=uid,
            run=run,
            who=who,
            action=str(request.action_name),
            targets=targets,
            created=now,
            visible_at=now + lag,
        )
        self.ops[op.op_id] = op
        draw = self.rng.random()
        if draw < 0.80:
            duration = self.rng.uniform(3.0, 60.0)
        elif draw < 0.95:
            duration = self.rng.uniform(60.0, 300.0)
        else:
            duration = self.rng.uniform(300.0, 1200.0)
        ending = self.rng.random()
        final = (
            OperationState.COMPLETED
            if ending < 0.85
            else OperationState.FAILED
            if ending < 0.95
            else OperationState.HUMAN_PROCESSING
        )
        asyncio.get_running_loop().call_later(duration, self._end, op, final)
        self.note(
            f"{op.op_id} accepted for {ref} run {run} from {who}: {op.action} "
            f"{'+'.join(_target_text(t) for t in sorted(targets, key=_target_text))} "
            f"({final.value} after {duration:.1f}s, visible after {lag:.1f}s)"
        )
        self.observer.emr_accepted(op)
        return op

    def _end(self, op: SimOperation, state: OperationState) -> None:
        if not op.unended:
            return
        op.state = state
        if state is OperationState.HUMAN_PROCESSING:
            op.reason_code, op.reason_message = "ServiceFailure", "waiting for manual processing"
            self._humans[op.op_id] = self.clock() + self.rng.uniform(30.0, 600.0)
            asyncio.get_running_loop().call_later(self._humans[op.op_id] - self.clock(), self._resolve, op)
        else:
            op.ended = self.clock()
            if state is OperationState.FAILED:
                op.reason_code, op.reason_message = "NodeFailure", "Failed on n2 (simulated)"
        self.note(f"{op.op_id} ({op.ref}) is {state.value}")
        self.observer.emr_operation_changed(op)

    def _resolve(self, op: SimOperation) -> None:
        """A person resolved a HUMAN_PROCESSING operation in the EMR console."""
        if op.state is not OperationState.HUMAN_PROCESSING or self._humans.get(op.op_id, 0.0) > self.clock():
            return
        self._humans.pop(op.op_id, None)
        op.state, op.ended = OperationState.COMPLETED, self.clock()
        op.reason_code = op.reason_message = None
        self.note(f"{op.op_id} ({op.ref}) resolved by a person: COMPLETED")
        self.observer.emr_operation_changed(op)

    def resolve_people_soon(self, within: float) -> None:
        """The quiet tail: every HUMAN_PROCESSING operation is resolved within ``within`` seconds."""
        loop = asyncio.get_running_loop()
        for op_id, when in list(self._humans.items()):
            latest = self.clock() + within
            if when > latest:
                self._humans[op_id] = latest
                loop.call_later(within, self._resolve, self.ops[op_id])

    def unended(self) -> list[SimOperation]:
        return [op for op in self.ops.values() if op.unended]

    # --- the APIs, applied when a request lands -----------------------------------------------

    def sending(self, ref: str, delta: int) -> None:
        """RunApplicationAction requests of ``ref`` on their way (a careful person waits for them)."""
        self.in_flight[ref] = self.in_flight.get(ref, 0) + delta

    def run_action(
        self,
        who: str,
        request: RunApplicationActionRequest,
        access_key_id: str,
        *,
        answer_at: float | None = None,
        run: int | None = None,
    ) -> RunApplicationActionResponse:
        action = "RunApplicationAction"
        ref = request.description
        fault = self._fault(
            (
                ("not_sent", 3.0),
                ("throttled", 3.0),
                ("invoke_ecm", 2.0),
                ("unavailable", 1.0),
                ("internal", 1.0),
                ("drop_after_apply", 2.0),
                ("nonce_used", 0.5),
            )
        )
        if fault == "not_sent":
            self.observer.emr_applied(who, action, ref, "RequestNotSent")
            raise RequestNotSentError("simulated: connection refused")
        try:
            self._throttle(access_key_id, action)
            if fault == "throttled":
                raise self._error("Throttling.User", action, retry_after=round(self.rng.uniform(0.5, 5.0), 3))
            if fault == "invoke_ecm":
                raise self._error("InvokeEcmError", action)
            if fault == "unavailable":
                raise self._error("ServiceUnavailable", action)
            if request.region_id not in self.regions:
                raise self._error("ResourceNotFound", action)
            targets = request_targets(request.component_instance_selector)
            if any(
                t.application not in _APPS or (t.component and t.component not in _COMPONENTS)
                for t in targets
            ):
                raise self._error("ResourceNotFound", action)
            applies = fault in ("drop_after_apply", "nonce_used") or (
                fault == "internal" and self.rng.random() < 0.5
            )
            if fault == "internal" and not applies:
                raise self._error("InternalError", action, retry_after=self._maybe_hint())
            if self.strict:
                for other in self.ops.values():
                    if (
                        other.state is OperationState.IN_PROGRESS
                        and (other.region_id, other.cluster_id) == (request.region_id, request.cluster_id)
                        and overlap(targets, other.targets)
                    ):
                        raise self._error("ConcurrentModification", action)
        except ApiError as exc:
            self.observer.emr_applied(who, action, ref, _described(exc))
            raise
        op = self._create(who, request, targets, run)
        error: Exception | None = None
        if fault == "drop_after_apply":
            error = OutcomeUnknownError("simulated: connection reset after the request was applied")
        elif fault == "nonce_used":
            # The first copy of the signed request applied; this retry of it (same nonce) is refused.
            error = self._error("SignatureNonceUsed", action)
        elif fault == "internal":
            error = self._error("InternalError", action, retry_after=self._maybe_hint())
        outcome = "OK" if error is None else f"applied {op.op_id}, answered {_described(error)}"
        self.observer.emr_applied(who, action, ref, outcome)
        if error is not None:
            raise error
        op.answered_at = answer_at
        return RunApplicationActionResponse(request_id=self._request_id(), operation_id=op.op_id)

    def _maybe_hint(self) -> float | None:
        """EMR sometimes sends ``x-acs-retry-after`` with an InternalError (issue 9, hole 5)."""
        return 2.0 if self.rng.random() < 0.3 else None

    def get_operation(
        self, who: str, request: GetOperationRequest, access_key_id: str, *, in_time: bool = True
    ) -> GetOperationResponse:
        action = "GetOperation"
        op = self.ops.get(request.operation_id)
        ref = op.ref if op is not None else None
        fault = self._fault(
            (("not_sent", 2.0), ("throttled", 3.0), ("unavailable", 1.0), ("internal", 1.0), ("lost", 1.0))
        )
        if fault == "not_sent":
            self.observer.emr_applied(who, action, ref, "RequestNotSent")
            if op is not None:
                self.observer.emr_polled(who, op, "RequestNotSent")
            raise RequestNotSentError("simulated: connection refused")
        try:
            self._throttle(access_key_id, action)
            if fault == "throttled":
                raise self._error("Throttling.User", action, retry_after=round(self.rng.uniform(0.5, 5.0), 3))
            if fault == "unavailable":
                raise self._error("ServiceUnavailable", action)
            if fault == "internal":
                raise self._error("InternalError", action)
            if (
                op is None
                or (op.region_id, op.cluster_id) != (request.region_id, request.cluster_id)
                or self.clock() < op.visible_at
            ):
                raise self._error("ResourceNotFound", action)
        except ApiError as exc:
            self.observer.emr_applied(who, action, ref, exc.code)
            if op is not None:
                self.observer.emr_polled(who, op, exc.code)
            raise
        self.observer.emr_applied(who, action, ref, fault or "OK")
        # What the caller learns: the state, unless the answer is lost or comes after its deadline.
        self.observer.emr_polled(who, op, op.state.value if fault is None and in_time else "lost")
        if fault == "lost":
            raise OutcomeUnknownError("simulated: read timeout")
        reason = (
            StateChangeReason(code=op.reason_code, message=op.reason_message)
            if op.reason_code is not None
            else None
        )
        return GetOperationResponse(
            request_id=self._request_id(),
            operation=Operation(
                operation_id=op.op_id,
                cluster_id=op.cluster_id,
                operation_state=op.state,
                operation_type="RUN_APPLICATION_ACTION",
                create_time=self._ms(op.created),
                start_time=self._ms(op.created),
                end_time=self._ms(op.ended),
                state_change_reason=reason,
            ),
        )

    def _read(self, who: str, action: str, access_key_id: str) -> None:
        """A read API's faults and quota (raised as the client sees them), then its record."""
        fault = self._fault((("not_sent", 1.0), ("throttled", 1.0), ("unavailable", 1.0)))
        try:
            if fault == "not_sent":
                raise RequestNotSentError("simulated: connection refused")
            self._throttle(access_key_id, action)
            if fault == "throttled":
                raise self._error("Throttling.User", action, retry_after=1.0)
            if fault == "unavailable":
                raise self._error("ServiceUnavailable", action)
        except (ApiError, RequestNotSentError) as exc:
            self.observer.emr_applied(who, action, None, getattr(exc, "code", "RequestNotSent"))
            raise
        self.observer.emr_applied(who, action, None, "OK")

    def list_instances(
        self, who: str, request: ListComponentInstancesRequest, access_key_id: str
    ) -> list[ComponentInstance]:
        self._read(who, "ListComponentInstances", access_key_id)
        busy = [
            op
            for op in self.ops.values()
            if op.state is OperationState.IN_PROGRESS
            and (op.region_id, op.cluster_id) == (request.region_id, request.cluster_id)
        ]
        found: list[ComponentInstance] = []
        for application, component, nodes in LAYOUT:
            if request.application_names and application not in request.application_names:
                continue
            if request.component_names and component not in request.component_names:
                continue
            for node in nodes:
                target = Target(application, component, node)
                moving = any(any(target.overlaps(t) for t in op.targets) for op in busy)
                found.append(
                    ComponentInstance(
                        application_name=application,
                        component_name=component,
                        node_id=node,
                        component_instance_state="STOPPING" if moving else "STARTED",
                    )
                )
        return found

    def list_nodes(self, who: str, request: ListNodesRequest, access_key_id: str) -> list[Node]:
        self._read(who, "ListNodes", access_key_id)
        nodes = sorted({node for _application, _component, on in LAYOUT for node in on})
        return [Node(node_id=node, node_name=node, node_state="Running") for node in nodes]


def _described(exc: Exception) -> str:
    """An answer as the trace shows it: the error code, and a retry-after hint if any."""
    if isinstance(exc, ApiError):
        return exc.code + (f" (retry-after {exc.retry_after:g}s)" if exc.retry_after is not None else "")
    return type(exc).__name__


_APPS = frozenset(app for app, _component, _nodes in LAYOUT)
_COMPONENTS = frozenset(component for _app, component, _nodes in LAYOUT)


def _target_text(target: Target) -> str:
    return "/".join(part for part in (target.application, target.component, target.node) if part) or "*"


class EmrView:
    """One replica incarnation's ``runner.EmrApi``."""

    def __init__(self, server: EmrServer, who: str, link: Link, rng: random.Random, deadline: float) -> None:
        self._server = server
        self._who = who
        self._link = link
        self._rng = rng
        #: The client's own deadline (``EmrClient(deadline=...)``): a slower call ends in
        #: ``OutcomeUnknownError`` then, while its request may still land.
        self._deadline = deadline

    async def _call(self, server: Callable[[float | None], T], landed: Callable[[], None] | None = None) -> T:
        """``server(answer_at)``: when the answer reaches the caller (None: after its deadline)."""
        latency = self._latency()
        answer_at = asyncio.get_running_loop().time() + latency if latency <= self._deadline else None
        answer: T = await self._link.call(
            lambda: server(answer_at),
            latency,
            deadline=self._deadline,
            on_deadline=lambda: OutcomeUnknownError(f"no answer within {self._deadline:g}s (simulated)"),
            landed=landed,
        )
        return answer

    def _latency(self) -> float:
        if self._rng.random() < 0.03:
            return self._rng.uniform(2.0, 45.0)  # slow enough, now and then, to hit the call timeout
        return self._rng.uniform(0.05, 0.5)

    async def run_application_action(
        self, request: RunApplicationActionRequest, *, credentials: CredentialsProvider
    ) -> RunApplicationActionResponse:
        key = (await credentials.get()).access_key_id
        # The run is the one the object's status names when the request is *sent*: a request
        # that lands late (after the caller's deadline, say) still belongs to that run.
        ref = request.description or ""
        run = self._server.owner_of(ref)[1]
        self._server.observer.emr_sent(self._who, ref)
        self._server.sending(ref, +1)
        response: RunApplicationActionResponse = await self._call(
            lambda answer_at: self._server.run_action(self._who, request, key, answer_at=answer_at, run=run),
            landed=lambda: self._server.sending(ref, -1),
        )
        return response

    async def get_operation(
        self, request: GetOperationRequest, *, credentials: CredentialsProvider
    ) -> GetOperationResponse:
        key = (await credentials.get()).access_key_id
        response: GetOperationResponse = await self._call(
            lambda answer_at: self._server.get_operation(
                self._who, request, key, in_time=answer_at is not None
            )
        )
        return response

    async def iter_component_instances(
        self, request: ListComponentInstancesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[ComponentInstance]:
        key = (await credentials.get()).access_key_id
        found: list[ComponentInstance] = await self._call(
            lambda _answer_at: self._server.list_instances(self._who, request, key)
        )
        for instance in found:
            yield instance

    async def iter_nodes(
        self, request: ListNodesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[Node]:
        key = (await credentials.get()).access_key_id
        found: list[Node] = await self._call(
            lambda _answer_at: self._server.list_nodes(self._who, request, key)
        )
        for node in found:
            yield node
