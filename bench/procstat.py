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
