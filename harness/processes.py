"""Child processes: how the harness starts them, waits for them and stops them.

Every child gets ``harness.env.child_env()``, runs in its own process group (so a signal reaches
everything it started), logs to one file that each start appends to, and is SIGKILLed by the
kernel if the parent dies (``PR_SET_PDEATHSIG``), so nothing outlives a test run or a benchmark.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self, TypeVar

# The control plane launcher's preexec_fn (Linux: PR_SET_PDEATHSIG, set from the main thread
# only, as the kernel ties it to the forking thread): the one parent-death helper of the repository.
from emrops.controlplane.processes import _die_with_parent_hook as die_with_parent

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

#: How long a child may take to be ready (the emulator's ready file, the operator's /readyz, the
#: kopf floor's ready file). One value for all: a healthy start takes about a second, but two
#: cores shared by a test run, a benchmark and their servers can stretch the imports tenfold; a
#: passing run never waits for it, so generosity costs nothing.
READY_TIMEOUT = 60.0
#: How long a child may take to exit after SIGTERM before it is SIGKILLed.
STOP_TIMEOUT = 20.0

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None], *, timeout: float, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Child:
    """One child process, restartable with the same command, environment and log file."""

    def __init__(self, label: str, command: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.label = label
        self.cmd = list(command)
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Self:
        assert self.proc is None or self.proc.poll() is not None, f"{self.label} is already running"
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.label} was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exited(self) -> str | None:
        """Why the process is not running (for a wait's predicate to raise with), or None."""
        if self.proc is not None and self.proc.poll() is not None:
            return f"{self.label} exited with {self.proc.returncode}; log:\n{self.tail(40)}"
        return None

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> None:
        """Send ``sig`` to the process group and wait; SIGKILL after ``timeout`` seconds."""
        self.signal_and_wait(sig, timeout)

    def signal_and_wait(self, sig: signal.Signals, timeout: float) -> int | None:
        """Like ``kill``, returning the exit code, or None when ``timeout`` passed (then SIGKILLed)."""
        if self.proc is None:
            return None
        rc: int | None = self.proc.returncode
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                rc = None
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            with self.log_path.open("ab") as log:
                log.write(f"===== stopped with {sig.name} (rc={self.proc.returncode})\n".encode())
        return rc

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def grep(self, needle: str) -> list[str]:
        return [line for line in self.log_text().splitlines() if needle in line]
