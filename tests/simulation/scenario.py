"""What happens in one seed: the parameters, and a timeline of user and operator-lifecycle actions.

Everything here is drawn up front from the seed (a ``random.Random`` seeded with a string, which
hashes the same in every process whatever ``PYTHONHASHSEED`` is), so a seed names the same
scenario even after the controller changes. What a *careful person* does (acknowledge an Unknown
run, re-run a finished one) still depends on the state at that moment; ``world.py`` decides it.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

REGION = "cn-hangzhou"
NAMESPACES = ("ns-a", "ns-b")

#: Selectors (spec.componentInstanceSelector), weighted so overlaps are common: an APPLICATION
#: scope overlaps every component and instance of its application; instances of different nodes
#: do not overlap one another.
SELECTORS: tuple[tuple[float, dict[str, Any]], ...] = (
    (4.0, {"runActionScope": "APPLICATION", "applicationName": "HDFS"}),
    (1.5, {"runActionScope": "APPLICATION", "applicationName": "YARN"}),
    (
        2.0,
        {
            "runActionScope": "COMPONENT",
            "applicationName": "HDFS",
            "components": [{"applicationName": "HDFS", "componentName": "DataNode"}],
        },
    ),
    (
        1.0,
        {
            "runActionScope": "COMPONENT",
            "applicationName": "HDFS",
            "components": [{"applicationName": "HDFS", "componentName": "NameNode"}],
        },
    ),
    (
        1.0,
        {
            "runActionScope": "COMPONENT",
            "applicationName": "YARN",
            "components": [{"applicationName": "YARN", "componentName": "NodeManager"}],
        },
    ),
    (
        1.5,
        {
            "runActionScope": "COMPONENT_INSTANCE",
            "applicationName": "HDFS",
            "componentInstances": [{"applicationName": "HDFS", "componentName": "DataNode", "nodeId": "n1"}],
        },
    ),
    (
        1.5,
        {
            "runActionScope": "COMPONENT_INSTANCE",
            "applicationName": "HDFS",
            "componentInstances": [{"applicationName": "HDFS", "componentName": "DataNode", "nodeId": "n2"}],
        },
    ),
    (
        0.3,  # names a component EMR does not have: ResourceNotFound, a terminal refusal
        {
            "runActionScope": "COMPONENT",
            "applicationName": "HDFS",
            "components": [{"applicationName": "HDFS", "componentName": "Ghost"}],
        },
    ),
)
ACTIONS: tuple[tuple[float, str], ...] = ((6.0, "restart"), (1.0, "start"), (1.0, "stop"), (1.0, "config"))


@dataclass(frozen=True)
class Params:
    """A seed's knobs. ``run_seed(seed, **overrides)`` draws them from the seed, then applies overrides."""

    replicas: int = 2
    #: EMR refuses overlapping operations (ConcurrentModification); False: EMR is permissive.
    strict: bool = True
    #: Replicas shard the objects by label: even replicas run with ``--label-selector team=a``,
    #: odd ones with ``team=b`` (False: every replica watches every object).
    shards: bool = False
    clusters: int = 2
    objects: int = 6
    #: The controller's rate limiter (``--rate-limit-qps`` / ``--rate-limit-burst``).
    qps: float = 10.0
    burst: int = 20
    #: EMR's quota per access key (throttling beyond it).
    quota_qps: float = 10.0
    #: Share of EMR calls that get an injected fault in the fault phase (apiserver: a fifth of it).
    fault_rate: float = 0.05
    #: Longest GetOperation read-after-write lag, seconds (below the 30 s not-found grace).
    read_lag: float = 3.0
    #: Mean watch lag in the fault phase, seconds.
    watch_lag: float = 0.5
    #: Most 410 Gone re-lists per replica incarnation.
    gones: int = 1
    #: Kills and graceful stops of replicas in the fault phase.
    disruptions: int = 1
    #: Replicas start only after the first objects exist (nobody watches at first).
    late_start: bool = False
    #: Length of the fault phase, virtual seconds; the quiet tail follows.
    active: float = 600.0

    def repro(self, seed: int) -> str:
        fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
        return f"run_seed({seed}, {fields})"


def _weighted(rng: random.Random, choices: tuple[tuple[float, Any], ...]) -> Any:
    total = sum(weight for weight, _value in choices)
    pick = rng.random() * total
    for weight, value in choices:
        pick -= weight
        if pick < 0:
            return value
    return choices[-1][1]


def draw_params(seed: int) -> Params:
    rng = random.Random(f"{seed}:params")
    limiter = _weighted(rng, ((5.0, (10.0, 20)), (3.0, (2.0, 4)), (2.0, (0.5, 1))))
    return Params(
        replicas=_weighted(rng, ((2.0, 1), (5.0, 2), (3.0, 3))),
        strict=rng.random() < 0.5,
        shards=rng.random() < 0.3,
        clusters=_weighted(rng, ((5.0, 1), (3.0, 2), (2.0, 3))),
        objects=rng.randint(3, 10),
        qps=limiter[0],
        burst=limiter[1],
        quota_qps=_weighted(rng, ((3.0, 20.0), (4.0, 5.0), (3.0, 2.0))),
        fault_rate=_weighted(rng, ((2.0, 0.0), (4.0, 0.05), (4.0, 0.15))),
        read_lag=_weighted(rng, ((3.0, 0.0), (4.0, 3.0), (3.0, 10.0))),
        watch_lag=_weighted(rng, ((4.0, 0.05), (4.0, 0.5), (2.0, 3.0))),
        gones=_weighted(rng, ((5.0, 0), (3.0, 1), (2.0, 2))),
        disruptions=_weighted(rng, ((3.0, 0), (4.0, 1), (3.0, 3))),
        late_start=rng.random() < 0.25,
        active=float(rng.choice((300, 450, 600))),
    )


@dataclass(frozen=True)
class ObjectPlan:
    namespace: str
    name: str
    created: float
    spec: dict[str, Any]
    labels: dict[str, str]
    #: Name of its credentials Secret, if it names one, and when that Secret appears (None:
    #: only in the quiet tail).
    secret: str | None = None
    secret_at: float | None = None
    delete_at: float | None = None
    #: When a careful person wants to re-run it (done only once its operations have ended).
    rerun_at: tuple[float, ...] = ()
    #: (time, team label value or None to remove it).
    relabel: tuple[tuple[float, str | None], ...] = ()
    #: With ``spec.suspend: true``: when a person approves it (sets it false); None: never (it
    #: then has a ``not_after`` and ends WindowExpired).
    approve_at: float | None = None
    #: ``spec.notBefore`` / ``spec.notAfter`` in the simulation's seconds (the world writes them
    #: as RFC 3339 times from its epoch).
    not_before: float | None = None
    not_after: float | None = None


@dataclass(frozen=True)
class ReplicaPlan:
    index: int
    #: (time, "start" | "kill" | "term"), in time order; it ends with the replica up.
    script: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class Plan:
    objects: tuple[ObjectPlan, ...]
    replicas: tuple[ReplicaPlan, ...]
    #: A careful person looks at Unknown / deadline runs this often (seconds) in the fault phase.
    person_every: float = 60.0
    #: Fractional second of the virtual epoch (so second boundaries fall differently per seed).
    epoch_fraction: float = 0.0


def _gates(
    rng: random.Random, spec: dict[str, Any], created: float, active: float
) -> tuple[float | None, float | None, float | None]:
    """spec.suspend (and when a person approves) and a time window, for some objects.

    Drawn from a random source of their own, so the rest of every seed's plan is as it was before
    these existed. Every gated object ends: a suspended one is approved before the quiet tail or
    has a ``notAfter``, and windows close early enough in the quiet tail that its liveness checks
    (work must progress) still hold.
    """
    suspend = rng.random() < 0.12
    windowed = rng.random() < 0.15
    approve_at: float | None = None
    if suspend:
        spec["suspend"] = True
        if rng.random() < 0.75:
            approve_at = min(created + rng.uniform(1.0, 200.0), active - 1.0)
        else:
            windowed = True  # never approved: its window must close
    not_before = not_after = None
    if windowed:
        if rng.random() < 0.7:
            not_before = created + rng.uniform(-60.0, 150.0)
        if rng.random() < 0.7 or (approve_at is None and suspend):
            not_after = min((not_before or created) + rng.uniform(10.0, 300.0), active + 200.0)
            if not_before is not None and not_after <= not_before:
                not_before = None
    return approve_at, not_before, not_after


def selector_of(params: Params, replica: int) -> str | None:
    """Replica ``replica``'s ``--label-selector``."""
    if not params.shards:
        return None
    return "team=a" if replica % 2 == 0 else "team=b"


def plan(seed: int, params: Params) -> Plan:
    rng = random.Random(f"{seed}:plan")
    active = params.active
    start_after = rng.uniform(20.0, 90.0) if params.late_start else 0.0
    objects: list[ObjectPlan] = []
    # Creation times: some alone, some in bursts within one second (the same-second case).
    times: list[float] = []
    while len(times) < params.objects:
        at = rng.uniform(0.0, active * 0.7)
        burst = 1 if rng.random() < 0.5 else rng.randint(2, 4)
        for _ in range(burst):
            times.append(at + rng.uniform(0.0, 0.4))
    times = sorted(times[: params.objects])
    if params.late_start:
        # A few objects exist before any operator does, most likely within one second: they must
        # start in queue order, not in the name order of the initial listing (issue 9, hole 2).
        for index in range(min(3, len(times))):
            times[index] = min(times[index], start_after / 2 + 0.1 * index)
        times.sort()
    # Names are shuffled against creation order, so name order is not creation order.
    numbers = list(range(params.objects))
    rng.shuffle(numbers)
    for index, created in enumerate(times):
        number = numbers[index]
        namespace = rng.choice(NAMESPACES)
        name = f"sa-{number:02d}"
        selector = _weighted(rng, SELECTORS)
        spec: dict[str, Any] = {
            "regionId": REGION,
            "clusterId": f"c-{rng.randint(1, params.clusters)}",
            "actionName": _weighted(rng, ACTIONS),
            "componentInstanceSelector": selector,
            "description": f"{namespace}/{name}",
        }
        if rng.random() < 0.2:
            spec["activeDeadlineSeconds"] = rng.randint(20, 400)
        secret: str | None = None
        secret_at: float | None = None
        if rng.random() < 0.3:
            secret = f"creds-{number:02d}"
            spec["credentialsSecretRef"] = {"name": secret}
            fate = rng.random()
            secret_at = (
                created - 1.0 if fate < 0.4 else created + rng.uniform(5.0, 200.0) if fate < 0.8 else None
            )
        team = "b" if params.shards and params.replicas > 1 and rng.random() < 0.3 else "a"
        labels = {"team": team, "app": "emrops-sim"}
        delete_at = created + rng.uniform(1.0, 300.0) if rng.random() < 0.15 else None
        if delete_at is not None and delete_at >= active:
            delete_at = None  # no user changes in the quiet tail
        reruns = tuple(
            sorted(created + rng.uniform(30.0, active) for _ in range(rng.choice((0, 0, 0, 1, 2))))
        )
        # Label changes. Taken out of every selector, an object is nobody's: the user then deletes
        # it or puts the label back, always before the quiet tail (an unfinished object nobody
        # manages would hold its cluster for ever, and that is the user's doing).
        relabel: tuple[tuple[float, str | None], ...] = ()
        if rng.random() < 0.15:
            off = min(created + rng.uniform(1.0, 200.0), active - 2.0)
            back = rng.uniform(off, active - 1.0)
            fate = rng.random()
            if fate < 0.4:
                relabel = ((off, None),)
                delete_at = min(delete_at or back, back)
            elif fate < 0.7 or not (params.shards and params.replicas > 1):
                relabel = ((off, None), (back, team))
            else:
                relabel = ((off, "b" if team == "a" else "a"),)  # moves to the other shard
        approve_at, not_before, not_after = _gates(
            random.Random(f"{seed}:gates:{number}"), spec, created, active
        )
        objects.append(
            ObjectPlan(
                namespace,
                name,
                created,
                spec,
                labels,
                secret,
                secret_at,
                delete_at,
                reruns,
                relabel,
                approve_at,
                not_before,
                not_after,
            )
        )
    replicas: list[ReplicaPlan] = []
    per_replica = [0] * params.replicas
    for _ in range(params.disruptions):
        per_replica[rng.randrange(params.replicas)] += 1
    for index in range(params.replicas):
        t = start_after + rng.uniform(0.0, 3.0)
        script: list[tuple[float, str]] = [(t, "start")]
        for _ in range(per_replica[index]):
            t += rng.uniform(5.0, active / 2)
            if t >= active:
                break
            script.append((t, "kill" if rng.random() < 0.6 else "term"))
            t += rng.uniform(1.0, 120.0)
            script.append((min(t, active), "start"))
        replicas.append(ReplicaPlan(index, tuple(script)))
    return Plan(
        objects=tuple(objects),
        replicas=tuple(replicas),
        person_every=rng.uniform(30.0, 120.0),
        epoch_fraction=rng.random(),
    )
