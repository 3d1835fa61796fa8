"""``emrops run`` as a child process against a kubeconfig and an EMR endpoint (the emulator).

``Operator(workdir, kubeconfig, emr_endpoint, namespaces=..., args=...).start()``; ``kill(sig)``,
``stop()``, ``terminate(timeout)`` and ``restart()`` keep the same flags, environment and log file.
This is the one way tests and the bench start ``emrops run``. The environment is
``harness.env.child_env()``: the operator never sees the parent's cloud credentials, profiles or
``EMROPS_*`` settings; ``credentials`` and ``env`` set what a test or the bench wants on purpose.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from harness.env import child_env
from harness.processes import PYTHON, READY_TIMEOUT, Child, free_port, wait_for

#: Polling fast enough for the emulator's time-scaled operations (0.2 s, backing off to 1 s).
FAST_POLLS = ("--poll-initial-seconds", "0.2", "--poll-max-seconds", "1")


def _command(
    emr_endpoint: str,
    namespaces: Sequence[str],
    args: Sequence[str],
    *,
    metrics_port: int,
    health_port: int,
    polls: Sequence[str],
) -> list[str]:
    """``emrops run`` on ``namespaces`` (none: all) against ``emr_endpoint``, polling by ``polls``,
    then ``args`` (a flag given twice: the later one wins). Port 0 serves no endpoint."""
    command = [PYTHON, "-m", "emrops", "run", "--emr-endpoint", emr_endpoint]
    command += ["--metrics-port", str(metrics_port), "--health-port", str(health_port), *polls]
    for namespace in namespaces:
        command += ["-n", namespace]
    return [*command, *args]


class Operator(Child):
    """One ``emrops run`` process.

    ``credentials`` (an access key id and secret) give the operator its own identity, through the
    environment, and an open tenancy policy letting every namespace use it (docs/security.md;
    a later ``--tenancy-policy`` in ``args`` wins). ``serve`` gives it metrics and health ports
    (``metrics()``), and ``start()`` then waits for ``/readyz``. ``polls`` are the polling flags
    (the bench passes none: the operator's defaults).
    """

    def __init__(
        self,
        workdir: Path,
        kubeconfig: str | Path,
        emr_endpoint: str,
        *,
        name: str = "operator",
        namespaces: Sequence[str] = (),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
        serve: bool = False,
        polls: Sequence[str] = FAST_POLLS,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.metrics_port = free_port() if serve else 0
        self.health_port = free_port() if serve else 0
        extra = dict(env or {})
        policy: list[str] = []
        if credentials is not None:
            extra = {
                "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials[0],
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials[1],
                **extra,
            }
            policy = ["--tenancy-policy", str(self._open_tenancy_policy(workdir))]
        command = _command(
            emr_endpoint,
            namespaces,
            [*policy, *args],
            metrics_port=self.metrics_port,
            health_port=self.health_port,
            polls=polls,
        )
        env = child_env({"KUBECONFIG": str(kubeconfig), **extra})
        super().__init__(name, command, env, workdir / f"operator-{name}.log")

    @staticmethod
    def _open_tenancy_policy(workdir: Path) -> Path:
        """A tenancy policy letting every namespace use the operator's own identity on any cluster."""
        path = workdir / "tenancy-open.yaml"
        grant = {"namespace": "*", "regions": ["*"], "clusters": ["*"]}
        path.write_text(json.dumps({"operatorIdentity": [grant]}))
        return path

    def start(self, *, ready: bool = True) -> Operator:
        """Start the process; with ``serve``, wait for ``/readyz`` too unless ``ready`` is False
        (for a test that watches the way up itself)."""
        super().start()
        if ready and self.health_port:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until ``/readyz`` answers 200: the operator is up, has listed and is watching."""

        def ready() -> bool:
            if problem := self.exited():
                raise RuntimeError(f"the operator did not start: {problem}")
            try:
                response = httpx.get(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        wait_for(ready, timeout=timeout, interval=0.2, what=f"{self.name} /readyz")

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> Operator:
        self.kill(sig)
        return self.start()

    def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM the process group and wait up to ``timeout`` seconds for it to exit.

        Returns (exit code, seconds it took); on a timeout the process is SIGKILLed and the code is
        None. Unlike ``kill``, the caller sees how long the graceful shutdown took."""
        start = time.monotonic()
        rc = self.signal_and_wait(signal.SIGTERM, timeout)
        return rc, time.monotonic() - start

    def metrics(self) -> str:
        assert self.metrics_port, "started without serve=True: no metrics port"
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log records (``--log-format json``), across every start."""
        records: list[dict[str, Any]] = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def __enter__(self) -> Operator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: A suite's fixture that starts operators: ``factory(*args, **options) -> Operator``.
OperatorFactory = Callable[..., Operator]
