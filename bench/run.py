"""emrops benchmark: latency, burst throughput, cost per action, footprint, and the direct-SDK baseline.

Usage::

    .venv/bin/python bench/run.py                 # the full run (make bench)
    .venv/bin/python bench/run.py --quick         # small counts, for development
    .venv/bin/python bench/run.py --only latency  # one phase (baseline, latency, burst, scale)

Starts a real local control plane (etcd + kube-apiserver), the EMR emulator (time-scaled) and the
operator (``emrops run``) as processes, measures, and writes ``bench/results/<date>-<name>.json``.
Latencies come from a watch on the apiserver (event arrival times), never from polling. See
``bench/README.md`` for the method and ``docs/performance.md`` for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench import allocator, baseline, workload
from bench.floors import KopfFloorProcess, apiserver_write_floor
from bench.procstat import CpuBudget, sample_proc
from bench.recorder import Recorder
from emrops.controlplane import ControlPlane
from harness.calls import call_action, call_ok, call_param
from harness.emulator import Emulator
from harness.kube import AsyncKube
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from harness.operator import Operator
from harness.processes import REPO
from harness.status import TERMINAL_PHASES

#: The operator's logs: JSON at INFO (DEBUG would cost CPU the figures should not include).
LOG_FLAGS = ("--log-format", "json", "--log-level", "INFO")
PHASES = ("baseline", "latency", "burst", "scale", "idle-scale")
RESULTS = Path(__file__).resolve().parent / "results"
MiB = 1024 * 1024
#: Status keys whose change is a state transition (what the "at most 5 writes" target counts);
#: a write that changes only these others is a poll reporting progress.
POLL_KEYS = frozenset({"operation", "progress", "message", "abnInstances"})


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_mib": total_kib // 1024,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
    }


# --------------------------------------------------------------------------------------------
# Cost per action (from the emulator's calls log and the recorder)
# --------------------------------------------------------------------------------------------


def cost(calls: list[dict[str, Any]], recorder: Recorder, names: Iterable[str]) -> dict[str, Any]:
    names = list(names)
    run_ok: dict[str, int] = dict.fromkeys(names, 0)
    run_all: dict[str, int] = dict.fromkeys(names, 0)
    op_to_name: dict[str, str] = {}
    for name in names:
        op = (
            (recorder.tracks[name].last.get("status") or {}).get("operationId")
            if name in recorder.tracks
            else None
        )
        if op:
            op_to_name[op] = name
    polls: dict[str, int] = dict.fromkeys(names, 0)
    for call in calls:
        action = call_action(call)
        if action == "RunApplicationAction":
            desc = str(call_param(call, "Description") or "")
            if desc in run_all:
                run_all[desc] += 1
                run_ok[desc] += int(call_ok(call))
        elif action == "GetOperation":
            polled = op_to_name.get(str(call_param(call, "OperationId") or ""))
            if polled is not None:
                polls[polled] += 1
    writes, transitions, poll_writes, meta_writes = [], [], [], []
    for name in names:
        track = recorder.tracks.get(name)
        if track is None:
            continue
        writes.append(track.modified)
        t = sum(1 for keys in track.changed_keys if not keys <= POLL_KEYS)
        transitions.append(t)
        poll_writes.append(len(track.changed_keys) - t)
        meta_writes.append(track.modified - track.status_changes)

    def dist(values: list[int]) -> dict[str, float]:
        return (
            {"mean": round(statistics.fmean(values), 2), "max": max(values), "min": min(values)}
            if values
            else {}
        )

    return {
        "objects": len(names),
        "run_application_action_ok_per_object": dist(list(run_ok.values())),
        "run_application_action_calls_per_object": dist(list(run_all.values())),
        "objects_with_exactly_one_ok_submission": sum(1 for v in run_ok.values() if v == 1),
        "duplicate_submissions": sum(max(0, v - 1) for v in run_ok.values()),
        "get_operation_calls_per_object": dist(list(polls.values())),
        "writes_per_object": dist(writes),
        "status_transition_writes_per_object": dist(transitions),
        "status_poll_writes_per_object": dist(poll_writes),
        "metadata_only_writes_per_object": dist(meta_writes),
    }


def phases_reached(recorder: Recorder, names: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        phase = (
            (recorder.tracks[name].last.get("status") or {}).get("phase") if name in recorder.tracks else None
        )
        counts[str(phase)] = counts.get(str(phase), 0) + 1
    return counts


# --------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, cp: ControlPlane, emulator: Emulator, work: Path) -> None:
        self.args = args
        self.cp = cp
        self.emulator = emulator
        self.work = work
        self.kube: AsyncKube
        self.operator: Operator | None = None
        self.results: dict[str, Any] = {}
        quick = args.quick
        self.n_latency = 20 if quick else 200
        self.n_burst = 100 if quick else 1000
        self.burst_clusters = 10 if quick else 100
        self.n_scale = 300 if quick else 5000
        self.scale_clusters = max(self.burst_clusters, -(-self.n_scale // len(workload.INSTANCES)))
        #: Seconds of each idle measurement (the CPU target averages over 30 s).
        self.idle_seconds = 10 if quick else 30

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def machine_pids(self) -> dict[str, int]:
        """The processes that share the machine in every phase (the operator is added where it runs)."""
        return {**self.cp.pids, "emulator": self.emulator.pid, "bench": os.getpid()}

    def start_operator(self) -> Operator:
        op = Operator(
            self.work,
            self.cp.kubeconfig,
            self.emulator.url,
            args=[*LOG_FLAGS, "--rate-limit-qps", "0", *self.args.operator_arg],
            credentials=(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
            serve=True,
            polls=(),
            env={
                **operator_allocator_env(self.args),
                **dict(item.split("=", 1) for item in self.args.operator_env),
            },
        )
        op.start()
        self.operator = op
        return op

    async def run(self, only: str | None) -> dict[str, Any]:
        self.kube = await AsyncKube.from_kubeconfig(self.cp.kubeconfig)
        try:
            if only == "idle-scale":
                self.results["idle_scale"] = await self.phase_idle_scale()
                return self.results
            if only in (None, "baseline"):
                self.results["baseline"] = await self.phase_baseline()
            if only in (None, "latency", "burst", "scale"):
                self.start_operator()
                if only in (None, "latency"):
                    self.results["latency"] = await self.phase_latency()
                if only in (None, "burst", "scale"):
                    self.results["burst"] = await self.phase_burst()
                if only in (None, "scale"):
                    if self.results["burst"].get("problem"):
                        self.results["scale"] = {
                            "skipped": "the burst did not complete: " + self.results["burst"]["problem"]
                        }
                    else:
                        self.results["scale"] = await self.phase_scale()
                self.results["operator_metrics"] = self.metrics_excerpt()
                assert self.operator is not None, "the phases above started it"
                self.operator.stop()
                # The floors run last, with the operator stopped (nothing else writes or watches).
                self.results["floors"] = await self.phase_floors()
        finally:
            if self.operator is not None:
                self.operator.stop()
            await self.kube.close()
        if "baseline" in self.results and "latency" in self.results:
            self.results["ratios"] = self.ratios()
        return self.results

    # --- (e) the direct SDK ------------------------------------------------------------------

    async def phase_baseline(self) -> dict[str, Any]:
        client = baseline.sdk_client(self.emulator.url, ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        self.emulator.reset()
        seq_targets = workload.targets(self.n_latency, self.burst_clusters, prefix="sdk-seq")
        # One warm-up call (imports, first connection), as the operator also gets one at start.
        await baseline.sequential(client, [workload.warmup("sdk")])
        self.log(f"baseline: {len(seq_targets)} sequential SDK calls")
        latencies = await baseline.sequential(client, seq_targets)
        self.emulator.reset()
        burst_targets = workload.targets(self.n_burst, self.burst_clusters, prefix="sdk-burst")
        self.log(f"baseline: burst of {len(burst_targets)} SDK calls")
        seconds, failures = await baseline.burst(client, burst_targets)
        self.emulator.reset()
        return {
            "sequential_call_latency": summary_ms(latencies),
            "burst": {
                "calls": len(burst_targets),
                "seconds": round(seconds, 3),
                "failures": failures,
                "calls_per_second": round(len(burst_targets) / seconds, 1),
            },
        }

    # --- (a) create -> operationId -----------------------------------------------------------

    async def phase_latency(self) -> dict[str, Any]:
        ns = "bench-latency"
        await self.kube.ensure_namespace(ns)
        self.emulator.reset()
        recorder = Recorder(self.kube, ns)
        await recorder.start()
        targets = workload.targets(self.n_latency, self.burst_clusters, prefix="lat")
        # Warm-up object (first EMR connection, first Secret-less credential lookup), not counted.
        warm = workload.warmup("lat")
        await self.kube.create(ns, workload.manifest(warm))
        await recorder.wait(lambda r: _has_op(r, warm.description), within=120, what="warm-up operationId")
        self.log(f"latency: {len(targets)} sequential creates")
        to_op: list[float] = []
        to_first_status: list[float] = []
        for target in targets:
            name = target.description
            began = time.monotonic()
            await self.kube.create(ns, workload.manifest(target))
            await recorder.wait(lambda r, n=name: _has_op(r, n), within=120, what=f"{name} operationId")
            track = recorder.tracks[name]
            assert track.operation_id_at is not None
            to_op.append(track.operation_id_at - began)
            first = min(track.phase_at.values(), default=track.operation_id_at)
            to_first_status.append(first - began)
        names = [t.description for t in targets]
        await recorder.wait(lambda r: r.all_terminal(names), within=600, what="latency objects terminal")
        await asyncio.sleep(2)  # late writes after the terminal one would count too
        await recorder.stop()
        return {
            "create_to_operation_id": summary_ms(to_op),
            "create_to_first_status": summary_ms(to_first_status),
            "phases": phases_reached(recorder, names),
            "cost": cost(self.emulator.calls(), recorder, names),
        }

    # --- (b) burst, (c) cost, (d) footprint at ~1,000 ----------------------------------------

    async def phase_burst(self) -> dict[str, Any]:
        ns = "bench-burst"
        await self.kube.ensure_namespace(ns)
        self.emulator.reset()
        recorder = Recorder(self.kube, ns)
        await recorder.start()
        targets = workload.targets(self.n_burst, self.burst_clusters, prefix="burst")
        names = [t.description for t in targets]
        assert self.operator is not None
        sampler = Sampler(self.operator.pid)
        sampler.start()
        budget = CpuBudget({**self.machine_pids(), "operator": self.operator.pid})
        self.log(f"burst: creating {len(targets)} ServiceActions over {self.burst_clusters} clusters")
        began = time.monotonic()
        await self.kube.create_many(ns, (workload.manifest(t) for t in targets))
        created = time.monotonic() - began
        problem = None
        submitted_budget: dict[str, object] = {}
        try:
            await recorder.wait(
                lambda r: all(_has_op(r, n) for n in names), within=self.args.give_up, what="all submitted"
            )
            submitted_budget = budget.stop()
            submitted: float | None = max(recorder.tracks[n].operation_id_at or 0 for n in names) - began
            await recorder.wait(
                lambda r: r.all_terminal(names), within=self.args.give_up, what="all terminal"
            )
        except TimeoutError as exc:
            # Record what happened instead of losing the run: a missed target is a result too.
            problem = str(exc)
            self.log(f"burst: {problem}")
            submitted = None
        if not submitted_budget:
            submitted_budget = budget.stop()  # not all submitted: up to giving up
        running = [recorder.tracks[n].phase_at.get("Running") for n in names]
        succeeded = [recorder.tracks[n].phase_at.get("Succeeded") for n in names]
        active = sampler.stop()
        await asyncio.sleep(2)
        self.log("burst: idle measurement")
        idle = await idle_sample(self.operator.pid, seconds=self.idle_seconds)
        await recorder.stop()
        to_op = [recorder.tracks[n].writes_to_operation_id for n in names if n in recorder.tracks]
        self.writes_to_operation_id = max(
            1, round(statistics.fmean([w for w in to_op if w is not None] or [3]))
        )
        per_action = [len(recorder.tracks[n].changed_keys) for n in names if n in recorder.tracks]
        self.status_writes_per_action = max(1, round(statistics.fmean(per_action or [5])))
        return {
            "objects": len(names),
            "clusters": self.burst_clusters,
            "seconds_to_all_created": round(created, 2),
            "seconds_to_all_submitted": round(submitted, 2) if submitted is not None else None,
            "objects_submitted": sum(1 for n in names if _has_op(recorder, n)),
            "problem": problem,
            "seconds_to_all_running": _span(running, began),
            "seconds_to_all_succeeded": _span(succeeded, began),
            "objects_never_seen_running": sum(1 for t in running if t is None),
            "phases": phases_reached(recorder, names),
            "cost": cost(self.emulator.calls(), recorder, names),
            "status_writes_before_operation_id": _dist([w for w in to_op if w is not None]),
            "events": await self.events_per_object(ns, names),
            "operator_active": active,
            # Every process's CPU from the first create to the last submission (or giving up).
            "cpu_budget_to_all_submitted": submitted_budget,
            "operator_idle": idle,
            "objects_watched": len(await self.kube.list()),
            # The operator's own counters after the burst (emrops_events_total: posted, dropped...).
            "operator_metrics": self.metrics_excerpt(),
        }

    async def events_per_object(self, namespace: str, names: list[str]) -> dict[str, Any]:
        """Event objects per ServiceAction (a repeat aggregated into one counts once) and their counts."""
        objects: dict[str, int] = dict.fromkeys(names, 0)
        occurrences: dict[str, int] = dict.fromkeys(names, 0)
        reasons: dict[str, int] = {}
        for event in await self.kube.events(namespace):
            involved = event.get("involvedObject") or {}
            name = involved.get("name")
            if involved.get("kind") != "ServiceAction" or name not in objects:
                continue
            objects[name] += 1
            occurrences[name] += int(event.get("count") or 1)
            reasons[str(event.get("reason"))] = reasons.get(str(event.get("reason")), 0) + 1
        return {
            "event_objects_per_run": _dist(list(objects.values())),
            "occurrences_per_run": _dist(list(occurrences.values())),
            "by_reason": dict(sorted(reasons.items())),
        }

    # --- (d) footprint at ~5,000, and a restart over them ------------------------------------

    async def phase_scale(self) -> dict[str, Any]:
        ns = "bench-scale"
        await self.kube.ensure_namespace(ns)
        self.emulator.reset()
        existing = len(await self.kube.list())
        n_new = max(0, self.n_scale - existing)
        recorder = Recorder(self.kube, ns)
        await recorder.start()
        targets = workload.targets(n_new, self.scale_clusters, prefix="scale")
        names = [t.description for t in targets]
        assert self.operator is not None
        sampler = Sampler(self.operator.pid)
        sampler.start()
        self.log(
            f"scale: creating {n_new} more ServiceActions ({existing} exist) "
            f"over {self.scale_clusters} clusters"
        )
        began = time.monotonic()
        await self.kube.create_many(ns, (workload.manifest(t) for t in targets))
        problem = None
        try:
            await recorder.wait(
                lambda r: r.all_terminal(names), within=self.args.give_up, what="all terminal"
            )
        except TimeoutError as exc:
            problem = str(exc)
            self.log(f"scale: {problem}")
        active = sampler.stop()
        total = len(await self.kube.list())
        await asyncio.sleep(2)
        self.log(f"scale: idle measurement with {total} objects")
        idle = await idle_sample(self.operator.pid, seconds=self.idle_seconds)
        # A restart over thousands of finished objects must cost no EMR call and little time.
        calls_before = len(self.emulator.calls())
        self.log("scale: operator restart over finished objects")
        self.operator.stop()
        restart_began = time.monotonic()
        self.operator.start()
        ready = time.monotonic() - restart_began
        restart_first = await idle_sample(self.operator.pid, seconds=10)
        after_restart = await idle_sample(self.operator.pid, seconds=self.idle_seconds)
        calls_after = len(self.emulator.calls())
        await recorder.stop()
        return {
            "objects_total": total,
            "objects_created_in_phase": n_new,
            "problem": problem,
            "seconds_to_all_terminal": None
            if problem
            else round(
                max(
                    (min(recorder.tracks[n].phase_at.get(p, 1e18) for p in TERMINAL_PHASES) for n in names),
                    default=began,
                )
                - began,
                2,
            ),
            "phases": phases_reached(recorder, names),
            "operator_active": active,
            "operator_idle": idle,
            "restart": {
                "seconds_to_ready": round(ready, 2),
                "emr_calls_during_restart": calls_after - calls_before,
                "first_10s_after_restart": restart_first,
                "operator_after_restart": after_restart,
            },
        }

    # --- the floors: kopf alone over the same objects, the bare apiserver writes --------------

    async def kopf_floor(self) -> dict[str, Any]:
        """A no-op kopf operator with emrops' kopf settings, started over every object there is."""
        total = len(await self.kube.list())
        self.log(f"floors: a no-op kopf operator with emrops' kopf settings over {total} objects")
        floor = KopfFloorProcess(self.work / "kopf-floor", self.cp.kubeconfig).start()
        try:
            sampler = Sampler(floor.pid)
            sampler.start()
            first = await idle_sample(floor.pid, seconds=10)
            idle = await idle_sample(floor.pid, seconds=self.idle_seconds)
            return {
                "objects": total,
                "first_10s_after_start": first,
                "idle": idle,
                "rss_peak_mib": sampler.stop()["rss_peak_mib"],
            }
        finally:
            floor.stop()

    async def phase_floors(self) -> dict[str, Any]:
        """The kopf floor, then the apiserver write floor twice: with the status writes emrops made
        per action in the burst (the issue's floor: the same writes), and with only those it made
        before ``status.operationId`` appeared (a stricter one, reported beside it)."""
        out: dict[str, Any] = {"kopf": await self.kopf_floor()}
        floors = {
            "apiserver_writes": ("floor", getattr(self, "status_writes_per_action", 5)),
            "apiserver_writes_to_operation_id": ("floor-op", getattr(self, "writes_to_operation_id", 3)),
        }
        for key, (prefix, writes) in floors.items():
            targets = workload.targets(self.n_burst, self.burst_clusters, prefix=prefix)
            self.log(f"floors: {len(targets)} creates + {writes} status writes each, bare client")
            budget = CpuBudget(self.machine_pids())
            out[key] = await apiserver_write_floor(
                self.kube,
                self.cp.kubeconfig,
                f"bench-{prefix}",
                [workload.manifest(t) for t in targets],
                writes=writes,
            )
            out[key]["cpu_budget"] = budget.stop()
        return out

    # --- (d) footprint with N finished objects, measured without processing them -------------

    async def phase_idle_scale(self) -> dict[str, Any]:
        """N objects whose status already says Succeeded (written before the operator starts):
        what the operator costs just to know them. Independent of EMR call handling."""
        ns = "bench-idle-scale"
        await self.kube.ensure_namespace(ns)
        targets = workload.targets(self.n_scale, self.scale_clusters, prefix="idle")
        self.log(f"idle-scale: creating {len(targets)} finished ServiceActions")
        await self.kube.create_many(ns, (workload.manifest(t) for t in targets))
        finished = {
            "status": {
                "phase": "Succeeded",
                "observedGeneration": 1,
                "operationId": "op-preexisting",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Succeeded",
                        "message": "done",
                        "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                    {
                        "type": "Reconciling",
                        "status": "False",
                        "reason": "Succeeded",
                        "message": "done",
                        "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                    {
                        "type": "Stalled",
                        "status": "False",
                        "reason": "Succeeded",
                        "message": "done",
                        "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    },
                ],
            }
        }
        semaphore = asyncio.Semaphore(32)

        async def finish(name: str) -> None:
            async with semaphore:
                await self.kube.patch_status(ns, name, finished)

        await asyncio.gather(*(finish(t.description) for t in targets))
        self.emulator.reset()
        self.log(f"idle-scale: starting the operator over {len(targets)} finished objects")
        began = time.monotonic()
        op = self.start_operator()
        ready = time.monotonic() - began
        sampler = Sampler(op.pid)
        sampler.start()
        first = await idle_sample(op.pid, seconds=10)
        idle = await idle_sample(op.pid, seconds=self.idle_seconds)
        peak = sampler.stop()["rss_peak_mib"]
        emr_calls = len(self.emulator.calls())
        op.stop()
        self.results["floors"] = {"kopf": await self.kopf_floor()}
        return {
            "objects": len(targets),
            "seconds_to_healthy": round(ready, 2),
            "first_10s_after_start": first,
            "operator_idle": idle,
            "rss_peak_mib": peak,
            "emr_calls": emr_calls,
        }

    def metrics_excerpt(self) -> list[str]:
        if self.operator is None or not self.operator.running:
            return []
        try:
            text = self.operator.metrics()
        except Exception as exc:  # metrics are a bonus; never fail the run for them
            return [f"# metrics unavailable: {exc}"]
        return [line for line in text.splitlines() if line.startswith("emrops_")][:200]

    def ratios(self) -> dict[str, Any]:
        base = self.results["baseline"]
        lat = self.results["latency"]["create_to_operation_id"]
        out: dict[str, Any] = {
            "latency_p50_emrops_over_sdk": round(
                lat["p50_ms"] / base["sequential_call_latency"]["p50_ms"], 1
            ),
            "latency_p99_emrops_over_sdk": round(
                lat["p99_ms"] / base["sequential_call_latency"]["p99_ms"], 1
            ),
        }
        burst = self.results.get("burst")
        if burst and burst.get("seconds_to_all_submitted") is not None:
            out["burst_submit_emrops_over_sdk"] = round(
                burst["seconds_to_all_submitted"] / base["burst"]["seconds"], 1
            )
        return out


def floor_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """emrops over the floors measured in the same run (kopf alone, the bare apiserver writes)."""
    out: dict[str, Any] = {}
    floors = results.get("floors") or {}
    kopf = floors.get("kopf")
    scale = results.get("scale") or {}
    if kopf and "operator_idle" in scale:
        out["rss_idle_emrops_over_kopf"] = round(
            scale["operator_idle"]["rss_mib"] / kopf["idle"]["rss_mib"], 2
        )
        restarted = scale["restart"]["operator_after_restart"]
        out["rss_after_restart_emrops_over_kopf"] = round(restarted["rss_mib"] / kopf["idle"]["rss_mib"], 2)
        out["rss_peak_emrops_over_kopf_peak"] = round(
            scale["operator_active"]["rss_peak_mib"] / kopf["rss_peak_mib"], 2
        )
    idle_scale = results.get("idle_scale") or {}
    if kopf and "operator_idle" in idle_scale:
        out["rss_idle_over_finished_objects_emrops_over_kopf"] = round(
            idle_scale["operator_idle"]["rss_mib"] / kopf["idle"]["rss_mib"], 2
        )
        out["rss_peak_at_start_emrops_over_kopf"] = round(
            idle_scale["rss_peak_mib"] / kopf["rss_peak_mib"], 2
        )
    burst = results.get("burst") or {}
    for key in ("apiserver_writes", "apiserver_writes_to_operation_id"):
        writes = floors.get(key)
        if writes and burst.get("seconds_to_all_submitted") is not None:
            out[f"burst_submit_emrops_over_{key}"] = round(
                burst["seconds_to_all_submitted"] / writes["seconds"], 2
            )
    return out


def _dist(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"mean": round(statistics.fmean(values), 2), "max": max(values), "min": min(values)}


def _has_op(recorder: Recorder, name: str) -> bool:
    track = recorder.tracks.get(name)
    return track is not None and track.operation_id_at is not None


def _span(times: list[float | None], began: float) -> float | None:
    seen = [t for t in times if t is not None]
    return round(max(seen) - began, 2) if seen else None


class Sampler:
    """Samples the operator's RSS and CPU every half second while a phase runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples = [sample_proc(self.pid)]
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.samples.append(sample_proc(self.pid))

    def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        self.samples.append(sample_proc(self.pid))
        first, last = self.samples[0], self.samples[-1]
        wall = last.at - first.at
        cpu = last.cpu_seconds - first.cpu_seconds
        return {
            "seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "cpu_percent_of_one_core": round(100 * cpu / wall, 1) if wall else None,
            "rss_peak_mib": round(max(s.rss_bytes for s in self.samples) / MiB, 1),
            "rss_end_mib": round(last.rss_bytes / MiB, 1),
        }


async def idle_sample(pid: int, *, seconds: float) -> dict[str, Any]:
    first = sample_proc(pid)
    await asyncio.sleep(seconds)
    last = sample_proc(pid)
    cpu = last.cpu_seconds - first.cpu_seconds
    return {
        "seconds": round(last.at - first.at, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent_of_one_core": round(100 * cpu / (last.at - first.at), 2),
        "rss_mib": round(last.rss_bytes / MiB, 1),
        "open_fds": last.open_fds,
    }


# --------------------------------------------------------------------------------------------
# Targets and output
# --------------------------------------------------------------------------------------------


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """Each target of issue 11: the measured figure, its floor where there is one, and whether it is met."""
    out: dict[str, Any] = {}
    lat = results.get("latency", {}).get("create_to_operation_id")
    if lat:
        out["p50_create_to_operation_id_le_50ms"] = {"value_ms": lat["p50_ms"], "met": lat["p50_ms"] <= 50}
        out["p99_create_to_operation_id_le_300ms"] = {"value_ms": lat["p99_ms"], "met": lat["p99_ms"] <= 300}
    burst = results.get("burst")
    floors = results.get("floors") or {}
    if burst:
        writes_floor = (floors.get("apiserver_writes") or {}).get("seconds")
        strict_floor = (floors.get("apiserver_writes_to_operation_id") or {}).get("seconds")
        submitted = burst["seconds_to_all_submitted"]
        out["burst_all_submitted_le_1_5x_apiserver_write_floor"] = {
            "value_s": submitted,
            "floor_s": writes_floor,
            "ratio": round(submitted / writes_floor, 2) if submitted and writes_floor else None,
            # Not the target's: the floor of only the writes made before status.operationId.
            "floor_to_operation_id_s": strict_floor,
            "ratio_to_operation_id_floor": (
                round(submitted / strict_floor, 2) if submitted and strict_floor else None
            ),
            "objects": burst["objects"],
            "objects_submitted": burst.get("objects_submitted"),
            "met": bool(submitted is not None and writes_floor and submitted <= 1.5 * writes_floor),
        }
        c = burst["cost"]
        out["exactly_one_run_application_action"] = {
            "value": c["run_application_action_ok_per_object"],
            "met": c["objects_with_exactly_one_ok_submission"] == c["objects"],
        }
        out["status_writes_le_5_per_clean_run"] = {
            "value": c["writes_per_object"],
            "met": c["writes_per_object"].get("max", 99) <= 5,
        }
        events = burst["events"]["event_objects_per_run"]
        out["events_le_3_per_clean_run"] = {"value": events, "met": events.get("max", 99) <= 3}
        out["idle_cpu_after_burst_le_2pct"] = _idle_cpu_target(burst["operator_idle"])
    scale = results.get("scale")
    if scale and "operator_active" in scale:
        peak = max(scale["operator_active"]["rss_peak_mib"], scale["operator_idle"]["rss_mib"])
        out["rss_le_150mib_at_any_point_of_5000"] = {
            "value_mib": peak,
            "objects": scale["objects_total"],
            "met": peak <= 150,
        }
        idle = scale["operator_idle"]["rss_mib"]
        out["rss_idle_le_100mib_after_5000"] = {"value_mib": idle, "met": idle <= 100}
        out["idle_cpu_after_5000_le_2pct"] = _idle_cpu_target(scale["operator_idle"])
        kopf = floors.get("kopf")
        if kopf:
            floor = kopf["idle"]["rss_mib"]
            out["rss_idle_le_2x_kopf_floor"] = {
                "value_mib": idle,
                "floor_mib": floor,
                "ratio": round(idle / floor, 2),
                "met": idle <= 2 * floor,
            }
        if burst:
            grown = scale["objects_total"] - burst["objects_watched"]
            if grown > 0:
                kib = (idle - burst["operator_idle"]["rss_mib"]) * 1024 / grown
                out["rss_per_finished_object_le_10kib"] = {
                    "value_kib": round(kib, 2),
                    "between_objects": [burst["objects_watched"], scale["objects_total"]],
                    "met": kib <= 10,
                }
    idle_scale = results.get("idle_scale")
    if idle_scale:
        rss = idle_scale["operator_idle"]["rss_mib"]
        out["rss_idle_le_100mib_over_5000_finished"] = {
            "value_mib": rss,
            "objects": idle_scale["objects"],
            "met": rss <= 100,
        }
        peak = idle_scale["rss_peak_mib"]
        out["rss_peak_le_150mib_starting_over_5000_finished"] = {"value_mib": peak, "met": peak <= 150}
        kopf = floors.get("kopf")
        if kopf:
            out["rss_idle_le_2x_kopf_floor_over_5000_finished"] = {
                "value_mib": rss,
                "floor_mib": kopf["idle"]["rss_mib"],
                "ratio": round(rss / kopf["idle"]["rss_mib"], 2),
                "met": rss <= 2 * kopf["idle"]["rss_mib"],
            }
    return out


def _idle_cpu_target(idle: dict[str, Any]) -> dict[str, Any]:
    """At most 2% of a core, averaged over the idle window that starts 2 s after the last run."""
    cpu = idle["cpu_percent_of_one_core"]
    return {"value_pct": cpu, "seconds": idle["seconds"], "met": cpu <= 2}


def operator_allocator_env(args: argparse.Namespace) -> dict[str, str]:
    """The allocator variables of the operator's image, unless ``--allocator=python``."""
    return allocator.operator_environment() if args.allocator == "image" else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts (development)")
    parser.add_argument("--only", choices=PHASES, help="run one phase (scale also runs burst first)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/<date>-<name>.json)")
    parser.add_argument("--name", default=None, help="name in the default result file name")
    parser.add_argument("--time-scale", type=float, default=0.01, help="emulator time scale (default 0.01)")
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=100.0,
        help="emulated seconds per instance state change (restart = 4 steps; default 100)",
    )
    parser.add_argument(
        "--give-up",
        type=float,
        default=600.0,
        help="seconds a phase may wait for all objects before it records the miss and moves on (600)",
    )
    parser.add_argument("--operator-arg", action="append", default=[], help="extra `emrops run` argument")
    parser.add_argument(
        "--allocator",
        choices=("image", "python"),
        default="image",
        help="the operator's memory allocator: the image's (jemalloc, deploy/Dockerfile) or CPython's own",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the operator's process (an allocator experiment, say)",
    )
    args = parser.parse_args(argv)

    name = args.name or ("quick" if args.quick else "full")
    out = args.out or RESULTS / f"{datetime.date.today().isoformat()}-{name}.json"
    work = Path(tempfile.mkdtemp(prefix="emrops-bench-"))
    started = datetime.datetime.now(datetime.UTC)
    header = {
        "tool": "bench/run.py",
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "method": {
            "emulator_time_scale": args.time_scale,
            "emulator_step_seconds": args.step_seconds,
            "operator_args": ["--rate-limit-qps", "0", *args.operator_arg],
            "operator_env": args.operator_env,
            "operator_allocator": operator_allocator_env(args) or "python (pymalloc)",
            "latency": "create -> first watch event carrying status.operationId "
            "(apiserver watch arrival time)",
            "writes": "MODIFIED watch events per object; a status change touching only "
            f"{sorted(POLL_KEYS)} counts as a poll write, any other status change as a transition write",
            "calls": "/_emulator/calls: RunApplicationAction matched by Description (= object name), "
            "GetOperation by OperationId",
            "cpu_rss": "/proc/<operator pid>/stat (utime+stime) and /proc/<pid>/status VmRSS",
        },
        "logs": str(work),
    }
    print(f"bench: work dir {work}", flush=True)
    with ControlPlane() as cp:
        cp.install_crds(REPO / "crds" / "emrops.io_serviceactions.yaml")
        bench_clusters = max(100 if not args.quick else 10, -(-(300 if args.quick else 5000) // 10))
        scenario_file = work / "scenario.yaml"
        scenario_file.write_text(
            yaml.safe_dump(workload.scenario(bench_clusters, step_seconds=args.step_seconds))
        )
        emulator = Emulator(work / "emulator", time_scale=args.time_scale, scenario=scenario_file)
        with emulator:
            bench = Bench(args, cp, emulator, work)
            results = asyncio.run(bench.run(args.only))
    finished = datetime.datetime.now(datetime.UTC)
    document = {
        **header,
        "finished": finished.isoformat(timespec="seconds"),
        "results": results,
        "floor_ratios": floor_ratios(results),
        "targets": verdicts(results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    print(json.dumps(document["targets"], indent=2))
    print(f"bench: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
