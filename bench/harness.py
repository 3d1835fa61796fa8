"""Real processes for benchmarks and fault tests: the EMR emulator, the operator, a watch recorder.

Everything here drives the components the way a user would: subprocesses started through the
``emrops`` console entry points, the Kubernetes API through a kubeconfig, the emulator through its
``/_emulator/`` inspection API. Nothing is imported from the operator's internals, so a benchmark
or a fault test measures exactly what ships.

Used by ``bench/run.py`` and by ``tests/integration/{faults,security,badinput}`` (their conftests put
the repository root on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CRD_FILE = REPO / "crds" / "emrops.io_serviceactions.yaml"
GROUP, VERSION, PLURAL = "emrops.io", "v1alpha1", "serviceactions"

DEMO_REGION = "cn-hangzhou"
DEMO_CLUSTER = "c-8a3f2e1d9b7c6a50"
DEMO_AK, DEMO_SECRET = "emrops-demo", "emrops-demo-secret"

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})


def _die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when its parent dies, so nothing outlives a run."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Emulator
# --------------------------------------------------------------------------------------------


@dataclass
class EmulatorProcess:
    """``emrops emulator`` as a subprocess; ``restart()`` keeps the port (state is in memory: lost)."""

    workdir: Path
    time_scale: float = 0.01
    scenario: Path | None = None
    port: int = 0
    extra_args: tuple[str, ...] = ()
    url: str = ""
    proc: subprocess.Popen[bytes] | None = None
    _starts: int = 0

    def start(self) -> EmulatorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._starts += 1
        ready = self.workdir / f"emulator-ready-{self._starts}"
        ready.unlink(missing_ok=True)
        args = [PYTHON, "-m", "emrops", "emulator", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--time-scale", str(self.time_scale), "--ready-file", str(ready)]
        if self.scenario is not None:
            args += ["--scenario", str(self.scenario)]
        args += list(self.extra_args)
        log = (self.workdir / f"emulator-{self._starts}.log").open("wb")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=_die_with_parent
        )
        log.close()

        def _ready() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}; see {log.name}")
            text = ready.read_text().strip() if ready.exists() else ""
            return text or None

        self.url = str(wait_for(_ready, timeout=60, what="the emulator's ready file")).rstrip("/")
        self.port = httpx.URL(self.url).port or self.port
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def calls(self) -> list[dict[str, Any]]:
        with self._client() as client:
            response = client.get("/_emulator/calls")
            response.raise_for_status()
            body = response.json()
        return list(body["calls"] if isinstance(body, dict) else body)

    def faults(self, spec: Mapping[str, Any]) -> Any:
        with self._client() as client:
            response = client.post("/_emulator/faults", json=dict(spec))
            response.raise_for_status()
            return response.json() if response.content else None

    def reset(self) -> None:
        with self._client() as client:
            client.post("/_emulator/reset").raise_for_status()

    def state(self) -> Any:
        with self._client() as client:
            response = client.get("/_emulator/state")
            response.raise_for_status()
            return response.json()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Operator
# --------------------------------------------------------------------------------------------


class _Child:
    """A child process in ``self.proc``: its pid, and a SIGTERM stop (SIGKILL after 20 s)."""

    proc: subprocess.Popen[bytes] | None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class OperatorProcess(_Child):
    """``emrops run`` as a subprocess with JSON logs in ``workdir``; metrics and health on free ports."""

    workdir: Path
    kubeconfig: str
    emr_endpoint: str
    name: str = "operator"
    namespaces: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = (DEMO_AK, DEMO_SECRET)
    metrics_port: int = 0
    health_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> OperatorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = self.metrics_port or free_port()
        self.health_port = self.health_port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMROPS_", "ALIBABA_CLOUD_"))}
        env.update(
            KUBECONFIG=self.kubeconfig,
            EMROPS_EMR_ENDPOINT=self.emr_endpoint,
            EMROPS_METRICS_PORT=str(self.metrics_port),
            EMROPS_HEALTH_PORT=str(self.health_port),
            EMROPS_LOG_FORMAT="json",
            EMROPS_LOG_LEVEL="DEBUG",
            # Never reach for the ECS metadata service or a developer's ~/.aliyun profile.
            ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
            ALIBABA_CLOUD_CLI_PROFILE_DISABLED="true",
            PYTHONUNBUFFERED="1",
        )
        if self.credentials is not None:
            env["ALIBABA_CLOUD_ACCESS_KEY_ID"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = self.credentials
        env.update(self.env)
        args = [PYTHON, "-m", "emrops", "run", "--tenancy-policy", str(self._open_tenancy_policy())]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        args += list(self.extra_args)
        log_path = self.workdir / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env, preexec_fn=_die_with_parent
            )
        self.wait_ready()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _open_tenancy_policy(self) -> Path:
        """A tenancy policy letting every namespace use the operator's own identity on any cluster.

        Benchmarks and fault tests drive the operator with its own (demo) key; without a policy
        the operator refuses that for every namespace (docs/security.md). A later
        ``--tenancy-policy`` in ``extra_args`` wins (the last flag counts).
        """
        path = self.workdir / "tenancy-open.yaml"
        grant = {"namespace": "*", "regions": ["*"], "clusters": ["*"]}
        path.write_text(json.dumps({"operatorIdentity": [grant]}))
        return path

    def wait_ready(self, timeout: float = 60) -> None:
        def _ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"operator exited early; log: {self.log_text()[-3000:]}")
            # /readyz answers 200 once the operator is up, has listed ServiceActions and is watching.
            try:
                response = httpx.get(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        wait_for(_ready, timeout=timeout, interval=0.2, what=f"{self.name} /readyz")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last patch; what a node failure or an OOM kill does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text

    def log_text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())

    def log_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class KopfFloorProcess(_Child):
    """``bench/kopf_floor.py`` as a subprocess: a no-op kopf operator with emrops' kopf settings."""

    workdir: Path
    kubeconfig: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> KopfFloorProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "kopf-floor-ready"
        ready.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMROPS_", "ALIBABA_CLOUD_"))}
        env.update(KUBECONFIG=self.kubeconfig, PYTHONUNBUFFERED="1")
        with (self.workdir / "kopf-floor.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(REPO / "bench" / "kopf_floor.py"), "--ready-file", str(ready)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
                preexec_fn=_die_with_parent,
            )

        def _ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the kopf floor exited with {self.proc.returncode}")
            return ready.exists()

        wait_for(_ready, timeout=60, interval=0.1, what="the kopf floor's startup")
        return self


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


# --------------------------------------------------------------------------------------------
# ServiceActions
# --------------------------------------------------------------------------------------------


def service_action(
    name: str,
    *,
    cluster_id: str = DEMO_CLUSTER,
    region_id: str = DEMO_REGION,
    action: str = "restart",
    application: str = "YARN",
    component: str = "NodeManager",
    description: str | None = None,
    secret: str | None = None,
    **spec_extra: Any,
) -> dict[str, Any]:
    """A ServiceAction manifest restarting one component of a cluster (COMPONENT scope)."""
    spec: dict[str, Any] = {
        "regionId": region_id,
        "clusterId": cluster_id,
        "actionName": action,
        "componentInstanceSelector": {
            "runActionScope": "COMPONENT",
            "components": [{"applicationName": application, "componentName": component}],
        },
        "description": description if description is not None else name,
    }
    if secret is not None:
        spec["credentialsSecretRef"] = {"name": secret}
    spec.update(spec_extra)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ServiceAction",
        "metadata": {"name": name},
        "spec": spec,
    }


def call_action(call: Mapping[str, Any]) -> str:
    """The API action of one ``/_emulator/calls`` entry (tolerant of the exact key name)."""
    for key in ("action", "Action", "api"):
        if key in call:
            return str(call[key])
    return ""


def call_params(call: Mapping[str, Any]) -> dict[str, Any]:
    for key in ("params", "parameters", "Parameters", "query"):
        value = call.get(key)
        if isinstance(value, dict):
            return value
    return {}


def call_param(call: Mapping[str, Any], name: str) -> Any:
    """A parameter of a recorded call, whether the emulator keeps it flat or nested."""
    params = call_params(call)
    if name in params:
        return params[name]
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def call_ok(call: Mapping[str, Any]) -> bool:
    """True when EMR performed the call: for RunApplicationAction, an operation was created
    (even if the connection was then dropped); otherwise an OK answer that was delivered."""
    if call_action(call) == "RunApplicationAction" and "operation_id" in call:
        return bool(call["operation_id"])
    return call.get("outcome") == "OK" and not call.get("dropped", False)


def ok_submissions_by_description(calls: list[dict[str, Any]]) -> dict[str, int]:
    """How many successful RunApplicationAction calls each ``Description`` received."""
    counts: dict[str, int] = {}
    for call in calls:
        if call_action(call) == "RunApplicationAction" and call_ok(call):
            desc = str(call_param(call, "Description") or "")
            counts[desc] = counts.get(desc, 0) + 1
    return counts


def phase_of(obj: Mapping[str, Any]) -> str | None:
    status = obj.get("status") or {}
    return status.get("phase") if isinstance(status, dict) else None


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------------------------
# Synchronous helpers for tests (kubectl through the ControlPlane launcher)
# --------------------------------------------------------------------------------------------


def kubectl_json(cp: Any, *args: str) -> Any:
    return json.loads(cp.kubectl(*args, "-o", "json").stdout)


def apply(cp: Any, namespace: str, *manifests: Mapping[str, Any]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": [dict(m) for m in manifests]})
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=body)


def serviceactions(cp: Any, namespace: str) -> dict[str, dict[str, Any]]:
    items = kubectl_json(cp, "get", "serviceactions", "-n", namespace)["items"]
    return {item["metadata"]["name"]: item for item in items}


def wait_phases(
    cp: Any,
    namespace: str,
    names: Iterator[str] | list[str],
    phases: frozenset[str] = TERMINAL_PHASES,
    *,
    timeout: float = 180,
) -> dict[str, dict[str, Any]]:
    """Wait until every named ServiceAction has a phase in ``phases``; return all objects."""
    wanted = list(names)
    last: dict[str, dict[str, Any]] = {}

    def done() -> bool:
        nonlocal last
        last = serviceactions(cp, namespace)
        return all(phase_of(last.get(n, {})) in phases for n in wanted)

    try:
        wait_for(done, timeout=timeout, interval=0.5, what=f"{wanted} in {sorted(phases)}")
    except TimeoutError as exc:
        seen = {n: phase_of(last.get(n, {})) for n in wanted}
        raise TimeoutError(f"{exc}; phases now: {seen}") from None
    return last


def secret_manifest(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": dict(data),
    }


def applied_runs(calls: list[dict[str, Any]]) -> dict[str, int]:
    """Per Description: RunApplicationAction calls EMR performed (an operation was created).

    A call dropped *after* apply counts (EMR acted; the client never heard); one dropped before
    apply or refused with an error does not.
    """
    counts: dict[str, int] = {}
    for call in calls:
        if call.get("action") == "RunApplicationAction" and call.get("operation_id"):
            desc = str((call.get("params") or {}).get("Description", ""))
            counts[desc] = counts.get(desc, 0) + 1
    return counts


def restart_apiserver(cp: Any, *, down_seconds: float = 2.0) -> None:
    """Stop kube-apiserver and start it again on the same etcd, port and certificates.

    Uses ``ControlPlane.restart_apiserver()`` when the launcher offers it; otherwise restarts
    the launcher's managed process directly (same argv, so same port and etcd).
    """
    method = getattr(cp, "restart_apiserver", None)
    if callable(method):
        method()
        return
    process = cp._apiserver
    process.stop(cp.stop_grace)
    time.sleep(down_seconds)
    process.start()
    wait_for(lambda: cp._get("/readyz")[0] == 200, timeout=120, interval=0.2, what="kube-apiserver /readyz")
