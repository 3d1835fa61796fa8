"""Child processes stop in every way the parent can end: normally, by signal, at exit, by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emrops.controlplane.processes import ManagedProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PDEATHSIG")


def alive(pid: int) -> bool:
    """True while ``pid`` runs; zombies (exited, not yet reaped) count as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def eventually_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def test_stop_terminates_the_process(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", ["sleep", "60"], tmp_path / "log")
    process.start()
    assert process.running()

    process.stop(grace=5)

    assert not process.running()
    assert process.returncode == -signal.SIGTERM


def test_stop_kills_a_process_ignoring_sigterm_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = f"trap '' TERM; echo up > {ready}; while :; do sleep 0.1; done"
    process = ManagedProcess("stubborn", ["sh", "-c", script], tmp_path / "log")
    process.start()
    wait_for_file(ready)

    process.stop(grace=0.3)

    assert process.returncode == -signal.SIGKILL


def test_stop_reaches_grandchildren_through_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    process = ManagedProcess(
        "parent", ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], tmp_path / "log"
    )
    process.start()
    grandchild = int(wait_for_file(pid_file))

    process.stop(grace=5)

    assert eventually_gone(grandchild)


def test_stop_twice_is_harmless(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", ["sleep", "60"], tmp_path / "log")
    process.start()
    process.stop(grace=5)
    process.stop(grace=5)
    assert not process.running()


def test_log_captures_stdout_and_stderr_and_tail_keeps_the_end(tmp_path: Path) -> None:
    script = "for i in $(seq 1 100); do echo out-$i; done; echo err-last >&2"
    process = ManagedProcess("talker", ["sh", "-c", script], tmp_path / "log")
    process.start()
    while process.running():
        time.sleep(0.01)

    tail = process.log_tail(lines=3)

    assert tail.splitlines() == ["out-99", "out-100", "err-last"]


# A parent Python process holding one child whose TERM trap leaves a mark: the mark proves the
# graceful stop ran (PDEATHSIG would send SIGKILL, which no trap sees).
PARENT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from emrops.controlplane import processes

    work = Path(sys.argv[2])
    child = processes.ManagedProcess(
        "child",
        ["sh", "-c", f"trap 'echo term > {work}/mark; exit 0' TERM; touch {work}/up; sleep 60 & wait"],
        work / "child.log",
    )
    processes.register_cleanup(1, lambda: child.stop(5))
    child.start()
    while not (work / "up").exists():  # the trap is in place
        time.sleep(0.01)
    print(child.pid, flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)
    time.sleep(60)
    """
)


def run_parent(mode: str, work: Path, ignore_sigint: bool = False) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode, str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # What a shell does to the background jobs of a script; the ignore survives exec.
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    return parent, child


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_to_the_parent_stops_the_child_gracefully(tmp_path: Path, sig: signal.Signals) -> None:
    parent, child = run_parent("sleep", tmp_path)

    parent.send_signal(sig)
    _, stderr = parent.communicate(timeout=15)

    assert parent.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert (tmp_path / "mark").read_text().strip() == "term"
    assert eventually_gone(child)


def test_an_ignored_sigint_stays_ignored(tmp_path: Path) -> None:
    parent, child = run_parent("sleep", tmp_path, ignore_sigint=True)

    parent.send_signal(signal.SIGINT)
    time.sleep(0.5)

    assert parent.poll() is None
    assert alive(child)
    parent.terminate()
    parent.communicate(timeout=15)
    assert (tmp_path / "mark").read_text().strip() == "term"


def test_interpreter_exit_stops_the_child_gracefully(tmp_path: Path) -> None:
    parent, child = run_parent("exit", tmp_path)

    parent.communicate(timeout=15)

    assert parent.returncode == 0
    assert (tmp_path / "mark").read_text().strip() == "term"
    assert eventually_gone(child)


def test_sigkill_of_the_parent_still_kills_the_child(tmp_path: Path) -> None:
    parent, child = run_parent("sleep", tmp_path)

    os.kill(parent.pid, signal.SIGKILL)
    parent.communicate(timeout=15)

    assert eventually_gone(child)
    assert not (tmp_path / "mark").exists()  # killed by the kernel, not by us
