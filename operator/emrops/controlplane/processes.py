"""Child processes that never outlive the Python process that started them.

Three layers, because each covers a way of dying the others miss:

- ``ManagedProcess.stop()``: the normal path (context managers, pytest fixture teardown).
- ``atexit`` and SIGTERM/SIGINT handlers (``register_cleanup``): the interpreter exits without
  unwinding the ``with`` block, or is asked to stop by a signal.
- ``PR_SET_PDEATHSIG`` (Linux): the kernel sends SIGKILL to a child when its parent dies, so
  even ``kill -9`` of pytest leaves no apiserver behind. Only the temporary folder then remains.

Children run in their own session (``start_new_session``), so a Ctrl-C in the terminal reaches
Python alone, which then stops them in order (apiserver before etcd) instead of both at once.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class ManagedProcess:
    """One long-running child with its output captured in a log file.

    **Parameters:**

    * **name** - what error messages call it (``etcd``, ``kube-apiserver``).
    * **argv** - the command line.
    * **log_path** - file receiving the child's stdout and stderr.
    * **env** - the child's environment (default: this process's).
    """

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started), else the exit status."""
        return self._popen.poll() if self._popen else None

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds. Safe to call more than once."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        self._signal_group(signal.SIGTERM)
        # Always wait with a timeout: Popen.wait() without one takes a lock that a signal
        # handler calling stop() again from the same thread would deadlock on.
        if not _wait(popen, grace):
            self._signal_group(signal.SIGKILL)
            _wait(popen, 10.0)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        # The child leads its own process group, so this also reaches anything it spawned.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)


def _wait(popen: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            popen.wait(timeout=0.05)
            return True
        except subprocess.TimeoutExpired:
            continue
    return popen.poll() is not None


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGKILL the child when this process dies.

    The kernel ties PDEATHSIG to the *thread* that forked the child, so it is only set when
    starting from the main thread; a child started from a worker thread would otherwise die
    with that thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would stop us.
        if os.getppid() != parent:
            os._exit(1)

    return set_pdeathsig


# --- last-resort cleanup ---------------------------------------------------------------------

_cleanups: dict[int, Callable[[], None]] = {}
_previous_handlers: dict[int, signal._HANDLER] = {}
_installed = False


def register_cleanup(key: int, cleanup: Callable[[], None]) -> None:
    """Run ``cleanup`` at interpreter exit or on SIGTERM/SIGINT unless unregistered before."""
    _cleanups[key] = cleanup
    _install_handlers()


def unregister_cleanup(key: int) -> None:
    _cleanups.pop(key, None)


def run_cleanups() -> None:
    """Run every registered cleanup (newest first); errors are reported, not raised."""
    for key in reversed(list(_cleanups)):
        cleanup = _cleanups.pop(key, None)
        if cleanup is None:
            continue
        try:
            cleanup()
        except Exception as exc:  # a failing cleanup must not stop the next one
            print(f"emrops.controlplane: cleanup failed: {exc!r}", file=sys.stderr)


def _install_handlers() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(run_cleanups)
    # signal.signal() only works in the main thread; elsewhere atexit and PDEATHSIG remain.
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        # An ignored signal stays ignored (e.g. SIGINT in a background job of a script), and a
        # handler installed outside Python (None) is not ours to replace.
        if previous in (signal.SIG_IGN, None):
            continue
        _previous_handlers[sig] = previous
        signal.signal(sig, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    run_cleanups()
    previous = _previous_handlers.get(signum)
    if callable(previous):
        # SIGINT's default handler raises KeyboardInterrupt, so pytest still tears down.
        previous(signum, frame)
    else:
        # Unwind like Ctrl-C so other context managers and fixtures clean up too; a second
        # signal of the same kind kills at once.
        signal.signal(signum, signal.SIG_DFL)
        raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")
