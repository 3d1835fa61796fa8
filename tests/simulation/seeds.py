"""Which seeds to run, and running many of them on every core.

``EMROPS_SOAK=1`` (``make soak``) runs 100,000 seeds; ``SEEDS=a-b`` (a range, ``b`` excluded),
``SEEDS=n`` (``0..n-1``) or ``SEED=k`` (one) choose them explicitly (``make simulate``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from simulation.world import simulate

DEFAULT_SEEDS = 1_000
SOAK_SEEDS = 100_000


def soak() -> bool:
    return os.environ.get("EMROPS_SOAK", "") not in ("", "0", "false")


def chosen() -> range:
    """The seeds this run covers, from ``SEED``, ``SEEDS`` and ``EMROPS_SOAK``."""
    one = os.environ.get("SEED", "").strip()
    if one:
        return range(int(one), int(one) + 1)
    spec = os.environ.get("SEEDS", "").strip()
    if spec:
        first, sep, last = spec.partition("-")
        return range(int(first), int(last)) if sep else range(int(first))
    return range(SOAK_SEEDS if soak() else DEFAULT_SEEDS)


@dataclass(frozen=True)
class Outcome:
    seed: int
    invariant: str | None
    report: str
    digest: str
    real_seconds: float
    virtual_seconds: float


def run_one(seed: int) -> Outcome:
    result = simulate(seed)
    violation = result.violation
    return Outcome(
        seed=seed,
        invariant=violation.invariant if violation else None,
        report=result.report() if violation else "",
        digest=result.digest,
        real_seconds=result.real_seconds,
        virtual_seconds=result.virtual_seconds,
    )


def workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def run_many(seeds: Iterable[int], processes: int | None = None) -> Iterator[Outcome]:
    """Every seed's outcome, in seed order, on ``processes`` forked workers (1: in this process)."""
    seeds = list(seeds)
    processes = processes or workers()
    if processes == 1 or len(seeds) < 8:
        yield from map(run_one, seeds)
        return
    # Fork: the workers inherit the imported modules, so each starts in milliseconds.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        yield from pool.map(run_one, seeds, chunksize=max(1, min(50, len(seeds) // (processes * 8))))


def summary(outcomes: list[Outcome], elapsed: float) -> str:
    count = len(outcomes)
    real = sum(o.real_seconds for o in outcomes)
    virtual = sum(o.virtual_seconds for o in outcomes)
    failed: dict[str, list[int]] = {}
    for outcome in outcomes:
        if outcome.invariant is not None:
            failed.setdefault(outcome.invariant, []).append(outcome.seed)
    lines = [
        f"{count} seeds in {elapsed:.1f}s on {workers()} worker(s) ({real / max(count, 1) * 1000:.1f} ms "
        f"per seed in its worker, {virtual / max(count, 1) / 60:.0f} virtual minutes per seed)"
    ]
    for invariant in sorted(failed, key=lambda k: int(k)):
        seeds = failed[invariant]
        shown = ", ".join(map(str, seeds[:12])) + (" ..." if len(seeds) > 12 else "")
        lines.append(f"  invariant {invariant}: {len(seeds)} seeds: {shown}")
    return "\n".join(lines)


def timed(seeds: Iterable[int], processes: int | None = None) -> tuple[list[Outcome], float]:
    began = time.perf_counter()
    outcomes = list(run_many(seeds, processes))
    return outcomes, time.perf_counter() - began
