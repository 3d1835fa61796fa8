"""Ground truth and the invariants, checked at every server-side step.

``Truth`` observes both simulated servers (it is the apiserver's ``Observer`` and EMR's
``EmrObserver``): every applied status write, object change and EMR call passes through it, and
each check runs right there, against what the servers really hold (never against a replica's
view). The first violation stops the loop; ``world.run_seed`` raises it as ``Violation`` with a
reproduction and the trace's tail.

The invariants (numbers as in issue 9 / the helper brief; 0 and 7-10 are additions):

0. No unexpected exception in the controller (anything but the injected apiserver faults).
1. At most one accepted RunApplicationAction per (object uid, run); accepted = EMR created an
   operation, drop-after-apply included.
2. Never two overlapping operations of our objects unended (IN_PROGRESS or HUMAN_PROCESSING) at
   once on one cluster at EMR. Excused: either object was deleted before the second was
   accepted (a deletion releases the cluster, and a request already on the wire cannot be
   recalled), or the other was taken out of every label selector (the user released it).
3. Creation order: when EMR accepts Y's run, no overlapping X that sorted earlier (spec point 2),
   existed and held the cluster (spec point 4) when Y's intent was written still holds it now.
4. Liveness (quiet tail): no object stays Queued while nothing holds the cluster ahead of it
   (``STALL_SECONDS``), the world never idles while work remains (``IDLE_SECONDS``), and it
   reaches quiescence: every managed run finished and every operation ended.
5. A recorded status.operationId is never lost or replaced within its run; status.run never
   goes back; a finished run never becomes unfinished again without a new run number.
6. No spinning: per (replica incarnation, object), EMR calls and status-write requests stay
   within ``spin_windows``; once the world is quiescent it is silent.
7. Graceful shutdown: no intent write is sent after SIGTERM, and when ``stop()`` returns every
   operation EMR accepted from that incarnation whose id reaches it before the shutdown grace
   ends (SIGTERM + ``--shutdown-grace``) is recorded in its object's status, even if ``stop()``
   returned sooner. A call still unanswered when the grace ends may be left to become Unknown,
   as spec point 12 allows.
8. Deadline verdict: a run is not reported DeadlineExceeded when its operation had ended before
   the deadline and the replica either did not poll after it ended or saw it ended.
9. Not-found verdict: no run ends Unknown/OperationNotFound for an operation EMR has (EMR never
   forgets operations here, and its read lag stays under the not-found grace).
10. Bounded retries: a run fails with InvokeEcmError only after EMR answered InvokeEcmError to
    at least ``Policy.bounded_attempts`` of its attempts.
11. Suspend and windows: no RunApplicationAction is sent for an object whose spec.suspend is
    true, before its spec.notBefore, or at or after its spec.notAfter (the send instant, on the
    apiserver's object as it is then).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emrops.api.spec import ServiceActionSpec
from emrops.api.status import RunStatus, parse_time
from emrops.api.targets import Target, overlap, targets_of
from simulation.apiserver import ApiServer, Change, Key, labels_match
from simulation.emr import EmrServer, SimOperation
from simulation.network import Wire
from simulation.trace import Trace

UNFINISHED = (None, "Pending", "Queued", "Submitting", "Running")
#: Unfinished, waiting on purpose (for an approval, for notBefore): they hold no queue place.
AT_REST = ("Suspended", "Scheduled")
FINISHED = ("Succeeded", "Failed", "Unknown")
ACKNOWLEDGED_AT = "emrops.io/acknowledged-at"
RUN_REQUESTED_AT = "emrops.io/run-requested-at"


def spin_windows(poll_initial: float) -> tuple[tuple[float, int, int], ...]:
    """Invariant 6: (window seconds, most EMR calls, most status-write requests) per (replica
    incarnation, object), derived from the policy.

    A worker makes at most one EMR call per decision and waits at least ``poll_initial`` (2 s by
    default) between two GetOperation polls: at most 60 / poll_initial polls a minute (30).
    Submissions back off exponentially with full jitter (ceilings 1, 2, 4, ... s), so only a
    handful fit in a minute even with unlucky draws: 15 on top. Writes: one per decision plus
    a retry after each 409, which needs a change by someone else; 60 a minute. Within one
    second: a poll, a progress listing and a jittered retry or two; a few writes racing other
    replicas. A worker that loops without waiting (issue 9's hole 3) is bounded only by the
    rate limiter (10/s by default) and by the apiserver's latency: hundreds a minute, dozens a
    second. The bounds sit far below that and were never reached by a controller without
    that bug in thousands of seeds.
    """
    per_minute = int(60.0 / poll_initial) + 15
    return ((1.0, 6, 10), (60.0, per_minute, 60))


#: Invariant 4: a Queued object with nothing ahead of it gets going within this (queue_recheck
#: 30 s, or a wake-up on the event that released it, plus watch lag and limiter waits).
STALL_SECONDS = 120.0
#: Invariant 4: with work left and no operation running, some run makes progress within this
#: (a 60 s backoff cap, a 50 s submit grace, a person's 30 s look, queue rechecks).
IDLE_SECONDS = 300.0


class Violation(AssertionError):
    def __init__(self, invariant: str, detail: str) -> None:
        self.invariant = invariant
        self.detail = detail
        super().__init__(f"invariant {invariant}: {detail}")


@dataclass
class Intent:
    """An intent write (phase Submitting) as the apiserver applied it."""

    time: float
    run: int
    attempts: int
    who: str
    #: uids of overlapping objects ahead of it in queue order that held the cluster then.
    ahead: list[str]


@dataclass
class ObjectTruth:
    uid: str
    key: Key
    created: float
    body: dict[str, Any]
    cluster: tuple[str, str]
    targets: frozenset[Target]
    deleted: float | None = None
    #: Times the object left the operators' label selector (the user took it away).
    unmanaged_at: list[float] = field(default_factory=list)
    intent: Intent | None = None
    acked_runs: list[int] = field(default_factory=list)

    @property
    def status(self) -> Mapping[str, Any]:
        st: Mapping[str, Any] = self.body.get("status") or {}
        return st

    @property
    def run(self) -> int:
        return int(self.status.get("run") or 1)


def _summary(status: Mapping[str, Any]) -> str:
    """phase/run/attempt/operationId of a status, for the trace."""
    if not status.get("phase"):
        return "-"
    text = f"{status.get('phase')} r{status.get('run') or 1}a{status.get('attempts') or 0}"
    return text + (f" {status['operationId']}" if status.get("operationId") else "")


def _targets(body: Mapping[str, Any]) -> tuple[tuple[str, str], frozenset[Target]]:
    spec = ServiceActionSpec.from_body(body)
    return (spec.region_id, spec.cluster_id), targets_of(spec.component_instance_selector)


_REASONS: dict[str, str | None] = {}


def reason_of(status: Mapping[str, Any]) -> str | None:
    """The status' reason, as the controller reads it back (from the conditions)."""
    conditions = status.get("conditions") or []
    cache_key = repr(conditions)
    if cache_key in _REASONS:
        return _REASONS[cache_key]
    if len(_REASONS) > 4096:
        _REASONS.clear()
    reason = _REASONS[cache_key] = RunStatus.from_dict({"conditions": conditions}).reason
    return reason


class Truth:
    """Ground truth of both servers, and the checks (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        epoch: datetime,
        trace: Trace,
        selectors: tuple[str | None, ...],
        bounded_attempts: int,
        poll_initial: float,
        shutdown_grace: float,
        enabled: bool = True,
        verbose: bool = False,
    ) -> None:
        self._clock = clock
        self._epoch = epoch
        self.trace = trace
        #: The label selectors the replicas run with (an object none matches is nobody's).
        self.selectors = selectors
        self.bounded_attempts = bounded_attempts
        self.windows_spec = spin_windows(poll_initial)
        self.shutdown_grace = shutdown_grace
        self.enabled = enabled
        #: Trace every request too (replays), not only changes.
        self.verbose = verbose
        #: The loop to stop at the first violation (set by the world).
        self.loop: asyncio.AbstractEventLoop | None = None
        self.api: ApiServer | None = None
        #: Requests on their way (set by the world): quiescence waits for them to land.
        self.wire = Wire()
        self.emr: EmrServer | None = None
        self.violation: Violation | None = None
        self.objects: dict[str, ObjectTruth] = {}
        self.by_key: dict[Key, str] = {}
        self.accepted: dict[tuple[str, int], list[str]] = {}
        self.ops_of: dict[str, list[SimOperation]] = {}
        self.invoke_ecm: dict[tuple[str, int], int] = {}
        self.polls: dict[tuple[str, str], list[tuple[float, str]]] = {}
        self.sigterm_at: dict[str, float] = {}
        self.windows: dict[tuple[str, str, str], deque[float]] = {}
        #: Set by the world: in the quiet tail the liveness checks run.
        self.quiet_since: float | None = None
        self.last_progress = 0.0
        self.queued_free_since: dict[str, float] = {}
        self.silent_since: float | None = None

    # --- failing ----------------------------------------------------------------------------

    def fail(self, invariant: str, detail: str) -> None:
        if self.violation is not None:
            return
        self.violation = Violation(invariant, detail)
        self.trace.add("CHECK", f"VIOLATION of invariant {invariant}: {detail}")
        if self.loop is not None:
            self.loop.stop()

    # --- queries on the truth -----------------------------------------------------------------

    def managed(self, obj: ObjectTruth) -> bool:
        labels = obj.body["metadata"].get("labels") or {}
        return any(labels_match(selector, labels) for selector in self.selectors)

    def ops_ended(self, uid: str) -> bool:
        return all(not op.unended for op in self.ops_of.get(uid, ()))

    def holds(self, obj: ObjectTruth, *, unmanaged_too: bool = False) -> bool:
        """Spec point 4: whether the object's current run holds its cluster's queue.

        An object no label selector matches is nobody's: it holds nothing when we accuse a
        replica of ignoring it (invariants 2 and 3), but a replica that waits for it is not
        stalling either (``unmanaged_too``, invariant 4).
        """
        if obj.deleted is not None or not (unmanaged_too or self.managed(obj)):
            return False
        status = obj.status
        phase = status.get("phase")
        if phase in UNFINISHED:
            return phase is None or reason_of(status) != "CredentialsMissing"
        if obj.run in obj.acked_runs:
            return False
        if phase == "Unknown":
            return True
        if phase == "Failed" and reason_of(status) == "DeadlineExceeded":
            return any(op.unended and op.run == obj.run for op in self.ops_of.get(obj.uid, ()))
        return False

    def order(self, obj: ObjectTruth) -> tuple[datetime, int, datetime, str, str]:
        """Spec point 2's queue order of the object's current run."""
        meta = obj.body["metadata"]
        status = obj.status
        start = parse_time(status.get("startTime"))
        if obj.run >= 2 and start is not None:
            second = start.replace(microsecond=0)
            return (second, 1, start, meta["namespace"], meta["name"])
        created = parse_time(meta.get("creationTimestamp")) or datetime.min.replace(tzinfo=UTC)
        return (created, 0, created, meta["namespace"], meta["name"])

    def rivals(self, obj: ObjectTruth) -> list[ObjectTruth]:
        """Existing objects on the same cluster whose targets overlap ``obj``'s."""
        return [
            other
            for other in self.objects.values()
            if other.uid != obj.uid
            and other.deleted is None
            and other.cluster == obj.cluster
            and overlap(other.targets, obj.targets)
        ]

    def owner_of(self, ref: str) -> tuple[str, int]:
        namespace, _, name = ref.partition("/")
        uid = self.by_key.get((namespace, name), f"unknown:{ref}")
        obj = self.objects.get(uid)
        return uid, obj.run if obj is not None else 1

    def done(self, obj: ObjectTruth) -> bool:
        """Nothing left to do for this object (liveness)."""
        if obj.deleted is not None or not self.managed(obj):
            return True
        status = obj.status
        if status.get("phase") not in FINISHED:
            return False
        wanted = (obj.body["metadata"].get("annotations") or {}).get(RUN_REQUESTED_AT)
        return wanted is None or wanted == status.get("runRequestedAt")

    # --- the apiserver's observer ------------------------------------------------------------

    def store_request(self, who: str, op: str, key: Key, payload: Mapping[str, Any] | None) -> None:
        if not self.enabled or op != "patch" or payload is None:
            return
        if payload.get("phase") == "Submitting" and who in self.sigterm_at:
            self.fail("7", f"{who} sent an intent write for {key[0]}/{key[1]} after SIGTERM")

    def store_applied(self, who: str, op: str, key: Key) -> None:
        if self.verbose and op != "secret":
            self.trace.add("apiserver", f"{op} from {who} for {key[0]}/{key[1]}")
        if op == "patch":
            self._count(who, self.by_key.get(key, "?"), "write")

    def changed(self, change: Change) -> None:
        now = self._clock()
        uid = change.uid
        if change.kind == "create":
            assert change.after is not None
            cluster, targets = _targets(change.after)
            obj = ObjectTruth(uid, change.key, now, change.after, cluster, targets)
            self.objects[uid] = obj
            self.by_key[change.key] = uid
            self.last_progress = now
            return
        obj = self.objects[uid]
        if change.kind == "delete":
            obj.deleted = now
            self.last_progress = now
            return
        assert change.before is not None and change.after is not None
        was_managed = self.managed(obj)
        obj.body = change.after
        if change.kind == "metadata":
            if was_managed and not self.managed(obj):
                obj.unmanaged_at.append(now)
            return
        before = change.before.get("status") or {}
        after = change.after.get("status") or {}
        if before.get("phase") != after.get("phase"):
            self.last_progress = now
        self.trace.add(
            "apiserver",
            f"{change.who} wrote {change.key[0]}/{change.key[1]} "
            f"rv {change.after['metadata']['resourceVersion']}: {_summary(before)} -> {_summary(after)}",
        )
        if self.enabled:
            self._check_status(obj, change.who, before, after)

    def _check_status(
        self, obj: ObjectTruth, who: str, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        ref = f"{obj.key[0]}/{obj.key[1]}"
        run_before = int(before.get("run") or 1) if before.get("phase") else 0
        run_after = int(after.get("run") or 1)
        if run_after < run_before:
            self.fail("5", f"{who} moved {ref} back from run {run_before} to run {run_after}")
            return
        same_run = run_after == run_before
        op_before, op_after = before.get("operationId"), after.get("operationId")
        if same_run and op_before and op_after != op_before:
            self.fail(
                "5",
                f"{who} {'replaced' if op_after else 'lost'} {ref}'s operationId {op_before} "
                f"within run {run_after} (now {op_after})",
            )
            return
        phase_before, phase_after = before.get("phase"), after.get("phase")
        if same_run and phase_before in FINISHED and (phase_after in UNFINISHED or phase_after in AT_REST):
            self.fail(
                "5", f"{who} moved {ref} run {run_after} from finished {phase_before} back to {phase_after}"
            )
            return
        if phase_after == "Submitting" and (
            phase_before != "Submitting" or before.get("attempts") != after.get("attempts")
        ):
            self._intent(obj, who, run_after, int(after.get("attempts") or 0))
        reason = reason_of(after) if phase_after in ("Failed", "Unknown") else None
        fresh = phase_after != phase_before or reason != reason_of(before)
        if phase_after == "Failed" and reason == "DeadlineExceeded" and fresh and op_after:
            self._deadline_verdict(obj, who, str(op_after))
        if phase_after == "Unknown" and reason == "OperationNotFound" and fresh and op_after:
            assert self.emr is not None
            op = self.emr.ops.get(str(op_after))
            if op is not None:
                self.fail(
                    "9",
                    f"{who} ended {ref} run {run_after} Unknown/OperationNotFound, but EMR has {op.op_id} "
                    f"({op.state.value}, accepted at {op.created:.3f}, readable from {op.visible_at:.3f})",
                )
        if phase_after == "Failed" and reason == "InvokeEcmError" and fresh:
            answered = self.invoke_ecm.get((obj.uid, run_after), 0)
            if answered < self.bounded_attempts:
                self.fail(
                    "10",
                    f"{who} failed {ref} run {run_after} with InvokeEcmError after EMR answered "
                    f"InvokeEcmError to {answered} of its attempts (bound {self.bounded_attempts})",
                )

    def _intent(self, obj: ObjectTruth, who: str, run: int, attempts: int) -> None:
        mine = self.order(obj)
        ahead = [other.uid for other in self.rivals(obj) if self.order(other) < mine and self.holds(other)]
        obj.intent = Intent(self._clock(), run, attempts, who, ahead)

    def _deadline_verdict(self, obj: ObjectTruth, who: str, op_id: str) -> None:
        assert self.emr is not None
        op = self.emr.ops.get(op_id)
        deadline_s = (obj.body.get("spec") or {}).get("activeDeadlineSeconds")
        start = parse_time(obj.status.get("startTime"))
        if op is None or op.ended is None or not isinstance(deadline_s, int) or start is None:
            return
        deadline = (start - self._epoch).total_seconds() + deadline_s
        if op.ended >= deadline:
            return
        seen = [(t, outcome) for t, outcome in self.polls.get((who, op_id), ()) if t >= op.ended]
        ended_seen = [t for t, outcome in seen if outcome in ("COMPLETED", "FAILED")]
        if not seen or ended_seen:
            how = f"it read that at {ended_seen[0]:.3f}" if ended_seen else "it never polled after that"
            self.fail(
                "8",
                f"{who} reported {obj.key[0]}/{obj.key[1]} DeadlineExceeded (deadline {deadline:.3f}), but "
                f"{op_id} had ended {op.state.value} at {op.ended:.3f}, before the deadline, and {how}",
            )

    # --- EMR's observer -------------------------------------------------------------------------

    def emr_applied(self, who: str, action: str, ref: str | None, outcome: str) -> None:
        if self.verbose:
            self.trace.add("EMR", f"{action} from {who} for {ref or '?'}: {outcome}")
        uid = self.owner_of(ref)[0] if ref else "?"
        if action != "ListComponentInstances":
            self._count(who, uid, "emr")
        if action == "RunApplicationAction" and outcome == "InvokeEcmError" and ref:
            uid, run = self.owner_of(ref)
            self.invoke_ecm[(uid, run)] = self.invoke_ecm.get((uid, run), 0) + 1

    def emr_sent(self, who: str, ref: str) -> None:
        """Invariant 11, at the instant a RunApplicationAction request leaves ``who``."""
        obj = self.objects.get(self.owner_of(ref)[0])
        if not self.enabled or obj is None or obj.deleted is not None:
            return
        spec = obj.body.get("spec") or {}
        now = self._epoch + timedelta(seconds=self._clock())
        not_before, not_after = parse_time(spec.get("notBefore")), parse_time(spec.get("notAfter"))
        if spec.get("suspend") is True:
            self.fail("11", f"{who} sent RunApplicationAction for {ref} while its spec.suspend is true")
        elif not_before is not None and now < not_before:
            self.fail(
                "11", f"{who} sent RunApplicationAction for {ref} at {now} before notBefore {not_before}"
            )
        elif not_after is not None and now >= not_after:
            self.fail("11", f"{who} sent RunApplicationAction for {ref} at {now}, past notAfter {not_after}")

    def emr_polled(self, who: str, op: SimOperation, outcome: str) -> None:
        self.polls.setdefault((who, op.op_id), []).append((self._clock(), outcome))

    def emr_operation_changed(self, op: SimOperation) -> None:
        self.last_progress = self._clock()

    def emr_accepted(self, op: SimOperation) -> None:
        self.ops_of.setdefault(op.uid, []).append(op)
        self.last_progress = self._clock()
        runs = self.accepted.setdefault((op.uid, op.run), [])
        runs.append(op.op_id)
        if not self.enabled:
            return
        if len(runs) > 1:
            self.fail(
                "1",
                f"EMR accepted {len(runs)} RunApplicationAction calls for {op.ref} ({op.uid}) run {op.run}: "
                f"{', '.join(runs)} (the last from {op.who})",
            )
            return
        assert self.emr is not None
        mine = self.objects.get(op.uid)
        for other in self.emr.ops.values():
            if mine is not None and mine.deleted is not None:
                break  # a request of an object deleted while it was in flight: nobody can recall it
            if (
                other is op
                or not other.unended
                or (other.region_id, other.cluster_id) != (op.region_id, op.cluster_id)
            ):
                continue
            if not overlap(other.targets, op.targets):
                continue
            owner = self.objects.get(other.uid)
            if owner is not None and (
                owner.deleted is not None or any(t >= other.created for t in owner.unmanaged_at)
            ):
                continue  # the user released it: deleted, or taken out of the label selector
            if owner is not None and not self.managed(owner):
                continue
            self.fail(
                "2",
                f"EMR accepted {op.op_id} for {op.ref} run {op.run} (from {op.who}) while {other.op_id} of "
                f"{other.ref} run {other.run} is {other.state.value} on the same targets of {op.cluster_id}",
            )
            return
        if mine is None or mine.intent is None:
            return
        for uid in mine.intent.ahead:
            other_obj = self.objects[uid]
            if self.holds(other_obj):
                self.fail(
                    "3",
                    f"EMR accepted {op.op_id} for {op.ref} run {op.run} (intent by {mine.intent.who} at "
                    f"{mine.intent.time:.3f}) while {other_obj.key[0]}/{other_obj.key[1]}, ahead of it in "
                    f"queue order, held the cluster then and still does (phase "
                    f"{other_obj.status.get('phase')}, run {other_obj.run})",
                )
                return

    # --- invariant 6 -----------------------------------------------------------------------------

    def _count(self, who: str, uid: str, kind: str) -> None:
        now = self._clock()
        if self.silent_since is not None and self.enabled:
            self.fail("6", f"{who} made a {kind} request for {uid} after the world was quiescent")
            return
        if not self.enabled:
            return
        times = self.windows.setdefault((who, uid, kind), deque())
        times.append(now)
        longest = self.windows_spec[-1][0]
        while times and times[0] < now - longest:
            times.popleft()
        for seconds, most_calls, most_writes in self.windows_spec:
            bound = most_calls if kind == "emr" else most_writes
            recent = sum(1 for t in times if t > now - seconds) if seconds < longest else len(times)
            if recent > bound:
                self.fail(
                    "6", f"{who} made {recent} {kind} requests for {uid} within {seconds:g}s (bound {bound})"
                )
                return

    # --- invariant 7 ------------------------------------------------------------------------------

    def sigterm(self, who: str) -> None:
        self.sigterm_at[who] = self._clock()

    def stopped(self, who: str) -> None:
        """``stop()`` returned: every operation whose id reaches ``who`` within the grace is on record."""
        if not self.enabled:
            return
        assert self.emr is not None
        for op in self.emr.ops.values():
            grace_ends = self.sigterm_at.get(who, self._clock()) + self.shutdown_grace
            if op.who != who or op.answered_at is None or op.answered_at > grace_ends:
                continue
            obj = self.objects.get(op.uid)
            if obj is None or obj.deleted is not None:
                continue
            status = obj.status
            recorded = status.get("operationId") == op.op_id or any(
                (h or {}).get("operationId") == op.op_id for h in status.get("history") or ()
            )
            if not recorded:
                self.fail(
                    "7",
                    f"{who} stopped gracefully, but {op.op_id} ({op.ref} run {op.run}), which EMR accepted "
                    f"from it, is not recorded (status: phase {status.get('phase')}, "
                    f"operationId {status.get('operationId')})",
                )
                return

    # --- invariant 4 ------------------------------------------------------------------------------

    def quiescent(self) -> bool:
        """Every managed run finished, every operation ended, nothing on the wire, nobody held."""
        assert self.emr is not None
        if self.emr.unended() or self.wire.pending:
            return False
        return all(self.done(obj) and not self.holds(obj) for obj in self.objects.values())

    def check_stalls(self) -> None:
        """Invariant 4: no object stays Queued while nothing ahead of it holds the cluster.

        Run only while the world is calm (the quiet tail, or a seed without faults, kills or
        410s once its replicas are up): then a release reaches every replica within the watch
        lag, and a queued run re-checks at least every ``queue_recheck``.
        """
        now = self._clock()
        if not self.enabled:
            return
        for obj in self.objects.values():
            if obj.deleted is not None or not self.managed(obj) or obj.status.get("phase") != "Queued":
                self.queued_free_since.pop(obj.uid, None)
                continue
            mine = self.order(obj)
            blocked = any(
                self.holds(other, unmanaged_too=True)
                and (
                    self.order(other) < mine
                    or other.status.get("phase") in ("Submitting", "Running", "Unknown", "Failed")
                )
                for other in self.rivals(obj)
            )
            if blocked:
                self.queued_free_since.pop(obj.uid, None)
                continue
            since = self.queued_free_since.setdefault(obj.uid, now)
            if now - since > STALL_SECONDS:
                self.fail(
                    "4",
                    f"{obj.key[0]}/{obj.key[1]} has been Queued for {now - since:.0f}s although nothing "
                    f"ahead of it holds the cluster (waitingFor {obj.status.get('waitingFor')})",
                )
                return

    def check_idle(self) -> None:
        """Invariant 4 in the quiet tail: with work left and no operation running, runs progress."""
        assert self.quiet_since is not None and self.emr is not None
        if not self.enabled or self.emr.unended():
            return
        now = self._clock()
        idle_from = max(self.last_progress, self.quiet_since)
        if now - idle_from > IDLE_SECONDS:
            pending = [obj for obj in self.objects.values() if not self.done(obj)]
            stuck = ", ".join(
                f"{o.key[0]}/{o.key[1]} ({o.status.get('phase')}, {reason_of(o.status)})" for o in pending[:4]
            )
            self.fail("4", f"no progress for {now - idle_from:.0f}s while work remains: {stuck}")

    def give_up(self, bound: float) -> None:
        assert self.emr is not None
        pending = [obj for obj in self.objects.values() if not self.done(obj)]
        stuck = ", ".join(f"{o.key[0]}/{o.key[1]} ({o.status.get('phase')})" for o in pending[:4])
        ops = ", ".join(op.op_id for op in self.emr.unended()[:4])
        self.fail(
            "4", f"not quiescent {bound:.0f}s into the quiet tail: objects [{stuck}], operations [{ops}]"
        )

    def controller_error(self, text: str) -> None:
        if self.enabled:
            self.fail("0", text)
