"""Readings of /proc for a pid: what the bench samples of the operator and the kopf floor."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcSample:
    """One reading of /proc for a pid: resident memory, total CPU time, open file descriptors."""

    rss_bytes: int
    cpu_seconds: float
    at: float
    open_fds: int = 0


def sample_proc(pid: int) -> ProcSample:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    # Fields 14 and 15 (utime, stime) follow the parenthesised command name, which may hold spaces.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        fds = 0
    return ProcSample(rss_bytes=rss, cpu_seconds=cpu, at=time.monotonic(), open_fds=fds)


class CpuBudget:
    """CPU seconds each process of the machine spent over one phase, and what that bounds.

    On a machine with ``cores`` cores, work that takes ``total`` CPU seconds cannot finish in
    less than ``total / cores`` seconds of wall time, however it is scheduled: a floor for a phase
    whatever the operator does with its own share.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.first = {name: sample_proc(pid) for name, pid in pids.items()}

    def stop(self) -> dict[str, object]:
        last = {name: sample_proc(pid) for name, pid in self.pids.items()}
        cpu = {name: round(last[name].cpu_seconds - self.first[name].cpu_seconds, 2) for name in self.pids}
        total = sum(cpu.values())
        wall = max(s.at for s in last.values()) - min(s.at for s in self.first.values())
        cores = os.cpu_count() or 1
        return {
            "cpu_seconds": cpu,
            "total_cpu_seconds": round(total, 2),
            "seconds": round(wall, 2),
            "cores": cores,
            "cores_busy": round(total / wall, 2) if wall else None,
            # The shortest wall time in which this much CPU work fits on this machine.
            "cpu_bound_seconds": round(total / cores, 2),
        }
