"""One seed, end to end: servers, replicas, users, the fault phase, the quiet tail, the checks.

``simulate(seed, **overrides)`` runs a seed and returns a ``Result``; ``run_seed`` does the same
and raises ``SeedFailed`` (an ``AssertionError`` naming the invariant, the seed, a pasteable
reproduction and the trace's tail) on a violation, so a failing seed pasted into a test fails
the same way.

Replicas are the real thing: each incarnation is a ``runner.Supervisor`` with its own
``Services`` (store and EMR views over its own network link, ``RateLimiter`` on the virtual
clock, ``Metrics``, an RNG from the seed), fed by its own watch stream. A kill (SIGKILL) cuts
its link at once; a graceful stop (SIGTERM) stops its watch, awaits ``supervisor.stop()`` for
the kubelet's grace period (the chart's terminationGracePeriodSeconds: ``--shutdown-grace``,
20 s by default, plus 15 s) and kills it if that runs out.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from emrops.api.status import format_time
from emrops.controller import machine, tenancy
from emrops.controller.apiserver import ApiError
from emrops.controller.app import policy_of
from emrops.controller.metrics import Metrics
from emrops.controller.ratelimit import RateLimiter
from emrops.controller.runner import Services, Supervisor
from emrops.controller.settings import Settings
from emrops.emr.credentials import StaticCredentials
from simulation.apiserver import ApiServer, StoreFaults, StoreView
from simulation.emr import EmrFaults, EmrServer, EmrView
from simulation.invariants import ACKNOWLEDGED_AT, RUN_REQUESTED_AT, ObjectTruth, Truth, Violation, reason_of
from simulation.loop import Deadlock, VirtualLoop
from simulation.network import Link, Wire
from simulation.scenario import ObjectPlan, Params, Plan, ReplicaPlan, draw_params, plan, selector_of
from simulation.trace import Trace
from simulation.watch import WatchStream

#: Which replica incarnation the running code belongs to (log lines, task bookkeeping).
WHO: contextvars.ContextVar[str] = contextvars.ContextVar("emrops_sim_who", default="world")

EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
#: Seconds the chart adds to ``--shutdown-grace`` for the pod's terminationGracePeriodSeconds
#: (deploy/helm/emrops/templates/manager/deployment.yaml).
CHART_GRACE_MARGIN = 15.0


#: Spec point 12's default ``--shutdown-grace``, for an operator that has no such setting yet.
SHUTDOWN_GRACE = 20.0


def shutdown_grace(settings: Settings) -> float:
    """``--shutdown-grace``: how long a call in flight at SIGTERM may take to be recorded."""
    shutdown = getattr(settings, "shutdown", None)  # absent before issue 9's graceful stop
    grace = getattr(shutdown, "grace_seconds", None)
    return SHUTDOWN_GRACE if grace is None else float(grace)


def termination_grace(settings: Settings) -> float:
    """The kubelet's terminationGracePeriodSeconds: SIGKILL follows SIGTERM after this."""
    return shutdown_grace(settings) + CHART_GRACE_MARGIN


#: Once quiescent, the controller may still finish its bookkeeping for this long (one slow
#: ``poll_max`` poll of an operation that just ended, echoing a last acknowledgement, a
#: throttled retry): then it must be silent (invariant 6) for ``SILENCE`` virtual seconds.
SETTLE = 120.0
SILENCE = 300.0
CONTROLLER_LOGGER = "emrops.controller"


class SeedFailed(AssertionError):
    pass


#: The simulation's objects use the operator's identity on any cluster: the tenancy policy is
#: tested on its own (tests/unit/controller, tests/integration/controller/test_tenancy.py).
OPEN_TENANCY = tenancy.parse(
    "operatorIdentity: [{namespace: '*', regions: ['*'], clusters: ['*']}]", "the simulation"
)


@dataclass
class Result:
    seed: int
    params: Params
    digest: str
    trace: list[str]
    violation: Violation | None
    virtual_seconds: float
    operations: int
    real_seconds: float

    def report(self) -> str:
        if self.violation is None:
            return f"seed {self.seed}: ok"
        tail = "\n".join(self.trace[-30:])
        return (
            f"invariant {self.violation.invariant} violated by seed {self.seed}: {self.violation.detail}\n"
            f"reproduce: {self.params.repro(self.seed)}\n"
            f"last trace lines:\n{tail}"
        )


def _injected(exc: BaseException | None) -> bool:
    """Whether an exception is (or was caused by) a fault the simulation injected on purpose."""
    while exc is not None:
        if isinstance(exc, ApiError) and exc.message.startswith("injected"):
            return True
        if isinstance(exc, TimeoutError) and "injected" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _TraceHandler(logging.Handler):
    """The controller's log lines go to the trace; an error logged with an exception that the
    simulation did not inject is a violation (invariant 0)."""

    def __init__(self, world: World, level: int) -> None:
        super().__init__(level)
        self._world = world

    def emit(self, record: logging.LogRecord) -> None:
        who = WHO.get()
        text = record.getMessage()
        self._world.trace.add(who, f"log {record.levelname}: {text[:300]}")
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and exc is not None and not _injected(exc):
            self._world.truth.controller_error(f"{who} logged {record.levelname}: {text[:200]} ({exc!r})")


class Incarnation:
    """One run of one replica's process: a Supervisor with its own Services, link and watch."""

    def __init__(self, world: World, replica: int, number: int) -> None:
        self.who = f"r{replica}.{number}"
        self.world = world
        seed = world.seed
        self.rng = random.Random(f"{seed}:{self.who}")
        self.link = Link(random.Random(f"{seed}:{self.who}:link"), world.bug, world.wire)
        self.context = contextvars.copy_context()
        self.context.run(WHO.set, self.who)
        loop = world.loop
        params = world.params
        self.services = Services(
            store=StoreView(
                world.api, self.who, self.link, random.Random(f"{seed}:{self.who}:store"), world.store_faults
            ),
            emr=EmrView(
                world.emr,
                self.who,
                self.link,
                random.Random(f"{seed}:{self.who}:emr"),
                deadline=world.client_deadline,
            ),
            default_credentials=StaticCredentials("default-access-key", "default-secret"),
            limiter=RateLimiter(params.qps, params.burst, clock=loop.time, sleep=asyncio.sleep),
            metrics=Metrics(),
            emit=self._emit,
            policy=world.policy,
            call_timeout=world.call_timeout,
            clock=world.now,
            rng=self.rng.random,
            tenancy_policy=lambda: OPEN_TENANCY,
        )
        self.supervisor = Supervisor(self.services)
        gones = [
            self.rng.uniform(loop.time(), params.active)
            for _ in range(self.rng.randint(0, params.gones))
            if loop.time() < params.active
        ]
        self.watch = WatchStream(
            world.api,
            self._observe,
            selector=selector_of(params, replica),
            lag=world.watch_lag,
            list_latency=world.list_latency,
            gone_at=gones,
            note=lambda text: world.trace.add(self.who, text),
        )
        self.state = "up"
        self.watch_task = world.spawn(self.watch.run(), self.context)

    def _emit(self, body: Any, event: machine.Event) -> None:
        if self.world.full:
            meta = body.get("metadata") or {}
            self.world.trace.add(
                self.who,
                f"event {meta.get('namespace')}/{meta.get('name')} {event.reason}: {event.message[:120]}",
            )

    def _observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        if self.world.full:
            meta = body["metadata"]
            phase = (body.get("status") or {}).get("phase")
            self.world.trace.add(
                self.who,
                f"sees {event_type} {meta['namespace']}/{meta['name']} "
                f"rv {meta['resourceVersion']} phase {phase}",
            )
        try:
            self.supervisor.observe(event_type, body)
        except Exception as exc:
            self.world.truth.controller_error(f"{self.who}: Supervisor.observe raised {exc!r}")

    def kill(self) -> None:
        self.link.kill()
        self.watch_task.cancel()
        self.state = "dead"
        self.world.trace.add(self.who, "SIGKILL")

    async def terminate(self) -> None:
        world = self.world
        world.trace.add(self.who, "SIGTERM")
        world.truth.sigterm(self.who)
        self.state = "stopping"
        self.watch_task.cancel()
        stopper = world.spawn(self.supervisor.stop(), self.context, ours=False)
        done, _pending = await asyncio.wait({stopper}, timeout=world.termination_grace)
        if self.state != "stopping":
            return
        if not done:
            world.trace.add(self.who, f"still running after {world.termination_grace:g}s: SIGKILL")
            self.kill()
            return
        if stopper.exception() is not None:
            world.truth.controller_error(f"{self.who}: Supervisor.stop raised {stopper.exception()!r}")
        world.trace.add(self.who, "stopped gracefully; the process exits")
        self.state = "dead"
        self.link.exit()
        world.truth.stopped(self.who)


class World:
    def __init__(
        self,
        seed: int,
        params: Params,
        *,
        full: bool = False,
        checks: bool = True,
        paranoid: bool = False,
        sabotage: str | None = None,
    ) -> None:
        self.seed = seed
        self.params = params
        self.full = full
        self.plan: Plan = plan(seed, params)
        self.loop = VirtualLoop()
        self.epoch = EPOCH + timedelta(seconds=self.plan.epoch_fraction)
        self.trace = Trace(self.loop.time)
        settings = Settings()
        self.policy = policy_of(settings)
        self.call_timeout = settings.emr.call_timeout + 10.0  # as Runtime.open sets it
        self.client_deadline = settings.emr.call_timeout  # EmrClient(deadline=...)
        self.termination_grace = termination_grace(settings)
        self.truth = Truth(
            clock=self.loop.time,
            epoch=self.epoch,
            trace=self.trace,
            selectors=tuple(selector_of(params, r.index) for r in self.plan.replicas),
            bounded_attempts=self.policy.bounded_attempts,
            poll_initial=self.policy.poll_initial,
            shutdown_grace=shutdown_grace(settings),
            enabled=checks,
            verbose=full,
        )
        self.api = ApiServer(
            self.loop.time,
            self.epoch,
            self.truth,
            paranoid=paranoid,
            preconditions=sabotage != "no-preconditions",
            hide_gates=sabotage == "ignore-gates",
        )
        self.emr = EmrServer(
            clock=self.loop.time,
            epoch_ms=int(self.epoch.timestamp() * 1000),
            rng=random.Random(f"{seed}:emr"),
            observer=self.truth,
            owner_of=self.truth.owner_of,
            note=lambda text: self.trace.add("EMR", text),
            strict=params.strict,
            quota_qps=params.quota_qps,
            quota_burst=max(2, int(params.quota_qps * 2)),
            faults=EmrFaults(rate=params.fault_rate, read_lag=params.read_lag),
        )
        self.truth.api, self.truth.emr, self.truth.loop = self.api, self.emr, self.loop
        self.store_faults = StoreFaults(random.Random(f"{seed}:store-faults"), params.fault_rate / 5)
        self.rng = random.Random(f"{seed}:world")
        self.wire = Wire()
        self.truth.wire = self.wire
        self.replicas: dict[int, Incarnation | None] = {r.index: None for r in self.plan.replicas}
        self.started: dict[int, int] = {r.index: 0 for r in self.plan.replicas}
        self.retired: list[Incarnation] = []
        self.quiet = False
        self.acks = 0
        self.sim_error: BaseException | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.loop.time())

    def spawn(
        self, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None, *, ours: bool = True
    ) -> asyncio.Task[Any]:
        """A task of the simulation (``ours``: its crash is a simulation bug) or of a replica."""
        task = self.loop.create_task(coro, context=context)
        if ours:
            task.add_done_callback(self._check_ours)
        return task

    def _check_ours(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.bug(task.exception() or RuntimeError("?"))

    def watch_lag(self) -> float:
        if self.quiet:
            return self.rng.uniform(0.0, 0.5)
        if self.rng.random() < 0.02:
            return self.rng.uniform(5.0, 20.0)
        return min(30.0, self.rng.expovariate(1.0 / self.params.watch_lag))

    def list_latency(self) -> float:
        return (
            self.rng.uniform(0.05, 0.5)
            if self.quiet or self.rng.random() < 0.9
            else self.rng.uniform(1.0, 5.0)
        )

    def bug(self, exc: BaseException) -> None:
        """A crash of the simulation's own code: stop, and report it as such (not as a finding)."""
        if self.sim_error is None:
            self.sim_error = exc
            self.loop.stop()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run a user action at virtual time ``when``; a crash in it is a simulation bug."""

        def guarded() -> None:
            try:
                action()
            except Exception as exc:
                self.bug(exc)

        self.loop.call_at(max(when, self.loop.time()), guarded)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, Deadlock) or _injected(exc):
            return
        self.truth.controller_error(f"unhandled in the loop: {context.get('message')} ({exc!r})")

    # --- replicas ---------------------------------------------------------------------------

    def start(self, index: int) -> None:
        current = self.replicas[index]
        if current is not None and current.state != "dead":
            return
        if current is not None:
            # A dead process's tasks stay referenced until the end: asyncio holds tasks only
            # weakly, and collecting them mid-run would happen when the collector decides.
            self.retired.append(current)
        self.started[index] += 1
        incarnation = Incarnation(self, index, self.started[index])
        self.replicas[index] = incarnation
        self.trace.add(incarnation.who, "started")

    async def drive(self, replica: ReplicaPlan) -> None:
        for when, action in replica.script:
            if when > self.loop.time():
                await asyncio.sleep(when - self.loop.time())
            current = self.replicas[replica.index]
            if action == "start":
                self.start(replica.index)
            elif current is not None and current.state == "up":
                if action == "kill":
                    current.kill()
                else:
                    await current.terminate()

    # --- users ----------------------------------------------------------------------------

    def schedule_users(self) -> None:
        for obj in self.plan.objects:
            key = (obj.namespace, obj.name)
            if obj.secret is not None and obj.secret_at is not None:
                self.at(obj.secret_at, functools.partial(self._put_secret, obj.namespace, obj.secret))
            self.at(
                obj.created,
                functools.partial(self._create, obj.namespace, obj.name, self._spec_of(obj), obj.labels),
            )
            if obj.approve_at is not None:
                self.at(obj.approve_at, functools.partial(self._approve, key))
            for when, value in obj.relabel:
                self.at(when, functools.partial(self._relabel, key, value))
            if obj.delete_at is not None:
                self.at(obj.delete_at, functools.partial(self._delete, key))
            for number, when in enumerate(obj.rerun_at, start=1):
                self.at(when, functools.partial(self._rerun, key, number, 10))

    def _spec_of(self, obj: ObjectPlan) -> dict[str, Any]:
        """The object's spec, its window as RFC 3339 times on this world's clock."""
        spec = dict(obj.spec)
        for field, seconds in (("notBefore", obj.not_before), ("notAfter", obj.not_after)):
            if seconds is not None:
                spec[field] = format_time(self.epoch + timedelta(seconds=seconds))
        return spec

    def _approve(self, key: tuple[str, str]) -> None:
        if self._existing(key) is None:
            return
        self.api.set_spec(key, "suspend", False)
        self.trace.add("user", f"approve {key[0]}/{key[1]}: spec.suspend false")

    def _put_secret(self, namespace: str, name: str | None) -> None:
        if name is None or (namespace, name) in self.api.secrets:
            return
        self.api.put_secret(
            (namespace, name), {"accessKeyId": f"key-{namespace}-{name}", "accessKeySecret": "s"}
        )
        self.trace.add("user", f"Secret {namespace}/{name} created")

    def _create(self, namespace: str, name: str, spec: dict[str, Any], labels: dict[str, str]) -> None:
        body = self.api.create(namespace, name, spec, labels)
        selector = spec["componentInstanceSelector"]
        what = selector.get("runActionScope"), selector.get("applicationName")
        extra = ""
        if "activeDeadlineSeconds" in spec:
            extra += f" deadline {spec['activeDeadlineSeconds']}s"
        if "credentialsSecretRef" in spec:
            extra += f" secret {spec['credentialsSecretRef']['name']}"
        if spec.get("suspend"):
            extra += " suspended"
        for field in ("notBefore", "notAfter"):
            if field in spec:
                extra += f" {field} {spec[field]}"
        self.trace.add(
            "user",
            f"create {namespace}/{name} ({body['metadata']['uid']}, {body['metadata']['creationTimestamp']}) "
            f"{spec['clusterId']} {spec['actionName']} {what} {labels.get('team')}{extra}",
        )

    def _existing(self, key: tuple[str, str]) -> ObjectTruth | None:
        uid = self.truth.by_key.get(key)
        obj = self.truth.objects.get(uid) if uid else None
        return obj if obj is not None and obj.deleted is None else None

    def _delete(self, key: tuple[str, str]) -> None:
        if self._existing(key) is None:
            return
        self.api.delete(key)
        self.trace.add("user", f"delete {key[0]}/{key[1]}")

    def _relabel(self, key: tuple[str, str], value: str | None) -> None:
        if self._existing(key) is None:
            return
        self.api.set_metadata(key, "labels", "team", value)
        self.trace.add("user", f"label {key[0]}/{key[1]} team={value}")

    def _rerun(self, key: tuple[str, str], number: int, tries: int) -> None:
        obj = self._existing(key)
        if obj is None or self.quiet:
            return
        status = obj.status
        wanted = (obj.body["metadata"].get("annotations") or {}).get(RUN_REQUESTED_AT)
        ready = (
            status.get("phase") in ("Succeeded", "Failed", "Unknown")
            and self.settled(obj)
            and (wanted is None or wanted == status.get("runRequestedAt"))
        )
        if not ready:
            if tries > 0:
                self.at(self.loop.time() + 30.0, lambda: self._rerun(key, number, tries - 1))
            return
        value = f"rerun-{number}-at-{self.loop.time():.0f}"
        self.api.set_metadata(key, "annotations", RUN_REQUESTED_AT, value)
        self.trace.add(
            "user",
            f"re-run {key[0]}/{key[1]}: {RUN_REQUESTED_AT}={value} (run {obj.run} was {status.get('phase')})",
        )

    def settled(self, obj: ObjectTruth) -> bool:
        """What a careful person checks in the EMR console: every operation of the object ended,
        and no request of it is still on its way (a person would look again a minute later)."""
        return self.truth.ops_ended(obj.uid) and not self.emr.in_flight.get(f"{obj.key[0]}/{obj.key[1]}")

    async def person(self) -> None:
        """A careful person: acknowledges Unknown (or deadline) runs once their operations ended."""
        while True:
            await asyncio.sleep(30.0 if self.quiet else self.plan.person_every)
            for obj in list(self.truth.objects.values()):
                if obj.deleted is not None or not self.truth.managed(obj) or obj.run in obj.acked_runs:
                    continue
                phase = obj.status.get("phase")
                held = phase == "Unknown" or (
                    phase == "Failed" and reason_of(obj.status) == "DeadlineExceeded"
                )
                if not held or not self.settled(obj):
                    continue
                if not self.quiet and self.rng.random() < 0.5:
                    continue  # not looked at this time
                self.acks += 1
                value = f"ack-{self.acks}"
                obj.acked_runs.append(obj.run)
                self.api.set_metadata(obj.key, "annotations", ACKNOWLEDGED_AT, value)
                self.trace.add(
                    "user", f"acknowledge {obj.key[0]}/{obj.key[1]} run {obj.run} ({phase}): {value}"
                )

    # --- the run ------------------------------------------------------------------------------

    def calm(self) -> bool:
        """Whether a queued run must get going within ``STALL_SECONDS`` once nothing holds it."""
        if self.quiet:
            return True
        params = self.params
        if params.fault_rate > 0 or params.disruptions > 0 or params.gones > 0:
            return False
        first_start = min(r.script[0][0] for r in self.plan.replicas)
        return self.loop.time() > first_start + 30.0  # the replicas are up and settled

    async def watchman(self) -> None:
        """Checks what is checked over time rather than at a step: stalled queues (invariant 4)."""
        while True:
            await asyncio.sleep(5.0)
            if self.calm():
                self.truth.check_stalls()
            else:
                self.truth.queued_free_since.clear()

    def enter_quiet(self) -> None:
        self.quiet = True
        self.truth.quiet_since = self.loop.time()
        self.emr.faults.rate = 0.0
        self.store_faults.rate = 0.0
        self.emr.resolve_people_soon(60.0)
        for obj in self.plan.objects:
            self._put_secret(obj.namespace, obj.secret)
        for index, current in self.replicas.items():
            if current is None or current.state == "dead":
                self.start(index)
        self.trace.add("world", "quiet tail: no more faults, kills, 410s or user changes; all Secrets exist")

    async def main(self) -> None:
        self.schedule_users()
        for replica in self.plan.replicas:
            self.spawn(self.drive(replica))
        self.spawn(self.person())
        self.spawn(self.watchman())
        await asyncio.sleep(self.params.active)
        self.enter_quiet()
        bound = 1800.0 + 1500.0 * len(self.plan.objects)
        start = self.loop.time()
        while not self.truth.quiescent():
            if self.loop.time() - start > bound:
                self.truth.give_up(bound)
                return
            self.truth.check_idle()
            await asyncio.sleep(5.0)
        self.trace.add("world", "quiescent: every run finished, every operation ended")
        await asyncio.sleep(SETTLE)
        self.trace.add("world", f"silent from now on for {SILENCE:g}s")
        self.truth.silent_since = self.loop.time()
        await asyncio.sleep(SILENCE)

    async def _cleanup(self) -> None:
        current = asyncio.current_task()
        for _ in range(5):
            pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        for task in asyncio.all_tasks():
            if task is not current and not task.done():
                task._log_destroy_pending = False  # type: ignore[attr-defined]  # a killed replica's hung task

    def run(self) -> Result:
        began = time.perf_counter()
        logger = logging.getLogger(CONTROLLER_LOGGER)
        saved = (logger.level, logger.propagate)
        # Replays trace the controller's whole log; fast runs only its errors (formatting every
        # line costs more than the checks).
        level = logging.INFO if self.full else logging.ERROR
        handler = _TraceHandler(self, level)
        logger.setLevel(level)
        logger.propagate = False
        logger.addHandler(handler)
        self.loop.set_exception_handler(self._on_loop_error)
        try:
            try:
                self.loop.run_until_complete(self.main())
            except RuntimeError:
                # ``loop.stop()`` by a violation (or a simulation bug) ends the run early.
                if self.truth.violation is None and self.sim_error is None:
                    raise
            except Deadlock:
                if self.truth.violation is None:
                    self.truth.violation = Violation(
                        "4", "deadlock: every task waits forever and no timer is set"
                    )
            if self.sim_error is not None:
                raise RuntimeError(f"simulation bug in seed {self.seed}") from self.sim_error
            # What happens while the tasks are cancelled is not part of the run: no more checks.
            self.truth.enabled = False
            self.loop.run_until_complete(self._cleanup())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
        return Result(
            seed=self.seed,
            params=self.params,
            digest=self.trace.digest(),
            trace=self.trace.lines,
            violation=self.truth.violation,
            virtual_seconds=self.loop.time(),
            operations=len(self.emr.ops),
            real_seconds=time.perf_counter() - began,
        )


def params_for(seed: int, **overrides: Any) -> Params:
    return replace(draw_params(seed), **overrides)


def simulate(
    seed: int,
    *,
    full: bool = False,
    checks: bool = True,
    paranoid: bool = False,
    sabotage: str | None = None,
    **overrides: Any,
) -> Result:
    """Run one seed (parameters drawn from it, then ``overrides``); never raises on a violation.

    ``full`` traces every request and the controller's log (replays); ``checks=False`` keeps the
    ground truth but skips the invariants (to measure what they cost); ``paranoid`` hands the
    controller deep copies instead of shared snapshots; ``sabotage="no-preconditions"`` breaks
    the apiserver on purpose (it ignores resourceVersion preconditions), and
    ``sabotage="ignore-gates"`` hides spec.suspend and the window from the replicas, to prove the
    checkers.
    """
    params = params_for(seed, **overrides)
    return World(seed, params, full=full, checks=checks, paranoid=paranoid, sabotage=sabotage).run()


def run_seed(seed: int, *, sabotage: str | None = None, **overrides: Any) -> Result:
    """Run one seed and raise ``SeedFailed`` on a violation (paste a reproduction into a test)."""
    result = simulate(seed, sabotage=sabotage, **overrides)
    if result.violation is not None:
        raise SeedFailed(result.report())
    return result
