"""The harness of the controller's integration tests: real apiserver, real emulator, real operator.

Every test here drives the operator exactly as a user would: `emrops run` started as a process
against the local control plane, ServiceActions created with kubectl, status read back from the
apiserver, and what EMR actually received read from the emulator's calls log.

Sharing: each test module gets its own namespace, its own emulator process (faults are global to
an emulator, so modules that inject faults must not share one) and its own operator processes.
Timeouts are generous on purpose: these tests prove correctness, never speed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from fixtures.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, SECRET_NAME, service_action

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"

TIME_SCALE = 0.01
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})
RUN_ACTION = "RunApplicationAction"
ACKNOWLEDGED_AT = "emrops.io/acknowledged-at"


def _die_with_pytest() -> Callable[[], None] | None:
    """preexec_fn: the kernel SIGKILLs the child if pytest dies, so nothing outlives the run."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return hook


# --- the emulator ----------------------------------------------------------------------------


# The calls log (GET /_emulator/calls -> {"calls": [...]}), one record per API call received:
# seq, time, action, params (flat, as sent: "ComponentInstanceSelector.RunActionScope"),
# access_key_id, outcome ("OK" or the EMR error code), http_status, operation_id (set when the
# call created an operation), request_id, signature, dropped (connection aborted, no answer).


def call_action(call: dict[str, Any]) -> str:
    return str(call.get("action") or "")


def call_outcome(call: dict[str, Any]) -> str:
    """ "OK" when the emulator served the call (even if it then dropped the answer), else the code."""
    return str(call.get("outcome") or "")


def call_param(call: dict[str, Any], name: str) -> Any:
    """A parameter by its flat API name: ``Description``, ``ComponentInstanceSelector.RunActionScope``."""
    return (call.get("params") or {}).get(name)


def accepted(call: dict[str, Any]) -> bool:
    """EMR started an operation for this call (whether or not the caller got the answer)."""
    return call_outcome(call) == "OK" and bool(call.get("operation_id"))


def marker(name: str) -> str:
    """The tag a test puts into spec.description so the calls log can be tied to its object."""
    return f"[svcact:{name}]"


class Emulator:
    """An `emrops emulator` subprocess on a free port, with its inspection API."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.ready = workdir / "emulator.ready"
        self.log_path = workdir / "emulator.log"
        self._log = self.log_path.open("wb")
        cmd = [
            sys.executable,
            "-m",
            "emrops",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--time-scale",
            str(TIME_SCALE),
            "--ready-file",
            str(self.ready),
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=_die_with_pytest()
        )
        deadline = time.monotonic() + 30
        while not (self.ready.exists() and self.ready.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"emulator did not start:\n{tail(self.log_path)}")
            time.sleep(0.05)
        self.url = self.ready.read_text().strip()
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def calls(self) -> list[dict[str, Any]]:
        return list(self.http.get("/_emulator/calls").raise_for_status().json()["calls"])

    def faults(self, spec: Any) -> Any:
        """Add fault rules (one dict or a list; see operator/emrops/emulator/faults.py)."""
        return self.http.post("/_emulator/faults", json=spec).raise_for_status().json()

    def reset(self) -> None:
        self.http.post("/_emulator/reset").raise_for_status()

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/state").raise_for_status().json())

    def run_calls(self, name: str | None = None) -> list[dict[str, Any]]:
        """RunApplicationAction calls, in order; with ``name``, only that object's (by its tag)."""
        return [
            call
            for call in self.calls()
            if call_action(call) == RUN_ACTION
            and (name is None or marker(name) in str(call_param(call, "Description") or ""))
        ]

    def ok_runs(self, name: str | None = None) -> list[dict[str, Any]]:
        """Accepted RunApplicationAction calls (outcome OK): EMR started an operation for each."""
        return [call for call in self.run_calls(name) if accepted(call)]

    def operations(self) -> dict[str, dict[str, Any]]:
        """The emulator's operations by id, from /_emulator/state."""
        return {op["OperationId"]: op for op in self.state()["operations"]}

    def abn_instances(self, operation_id: str) -> list[dict[str, str]]:
        """What EMR answers as AbnInstances for an operation: its abnormal target nodes, in order."""
        state = self.state()
        op = next(o for o in state["operations"] if o["OperationId"] == operation_id)
        cluster = next(c for c in state["clusters"] if c["ClusterId"] == op["ClusterId"])
        nodes = {n["NodeId"]: n for n in cluster["Nodes"]}
        found: dict[str, str] = {}
        for target in op["Targets"]:
            node = nodes[target["NodeId"]]
            if node["Abnormal"]:
                found.setdefault(node["NodeId"], node["NodeName"])
        return [{"nodeId": k, "nodeName": v} for k, v in found.items()]

    def set_abnormal(
        self, node: str, abnormal: bool = True, cluster_id: str = CLUSTER_ID, state: str | None = None
    ) -> None:
        """Mark ``node`` abnormal (its instances fail), and with ``state`` set its ListNodes NodeState."""
        body: dict[str, Any] = {"cluster_id": cluster_id, "node": node, "abnormal": abnormal}
        if state is not None:
            body["state"] = state
        self.http.post("/_emulator/nodes", json=body).raise_for_status()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


# --- the operator ----------------------------------------------------------------------------


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Operator:
    """One `emrops run` process; `.kill(sig)` and `.restart()` keep the same flags and log file."""

    def __init__(self, label: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.label = label
        self.cmd = cmd
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> Operator:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
                preexec_fn=_die_with_pytest(),
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with self.log_path.open("ab") as log:
            log.write(f"===== stopped with {sig.name} (rc={self.proc.returncode})\n".encode())

    def restart(self, sig: signal.Signals = signal.SIGKILL) -> Operator:
        self.kill(sig)
        return self.start()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def grep(self, needle: str) -> list[str]:
        return [ln for ln in self.log_path.read_text(errors="replace").splitlines() if needle in ln]


OperatorFactory = Callable[..., Operator]


# --- Kubernetes ------------------------------------------------------------------------------


class Kube:
    """kubectl in one namespace, plus the waits the tests need (polling the apiserver)."""

    def __init__(self, cp: Any, namespace: str) -> None:
        self.cp = cp
        self.namespace = namespace

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, namespaced: bool = True
    ) -> subprocess.CompletedProcess[str]:
        ns = ("-n", self.namespace) if namespaced else ()
        result: subprocess.CompletedProcess[str] = self.cp.kubectl(*ns, *args, input=input, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def create(self, *objs: dict[str, Any]) -> None:
        items = [{**o, "metadata": {**o.get("metadata", {}), "namespace": self.namespace}} for o in objs]
        self.kubectl(
            "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        )

    def create_secret(
        self, name: str = SECRET_NAME, key_id: str = ACCESS_KEY_ID, key_secret: str = ACCESS_KEY_SECRET
    ) -> None:
        self.kubectl(
            "create",
            "secret",
            "generic",
            name,
            f"--from-literal=accessKeyId={key_id}",
            f"--from-literal=accessKeySecret={key_secret}",
        )

    def all(self) -> dict[str, dict[str, Any]]:
        out = self.kubectl("get", "serviceactions.emrops.io", "-o", "json").stdout
        return {o["metadata"]["name"]: o for o in json.loads(out)["items"]}

    def get(self, name: str) -> dict[str, Any]:
        out = self.kubectl("get", "serviceactions.emrops.io", name, "-o", "json").stdout
        return dict(json.loads(out))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def annotate(self, name: str, key: str, value: str) -> None:
        self.kubectl("annotate", "--overwrite", f"serviceactions.emrops.io/{name}", f"{key}={value}")

    def wait_until(
        self,
        what: str,
        check: Callable[[dict[str, dict[str, Any]]], bool],
        timeout: float = 120,
        interval: float = 0.5,
    ) -> dict[str, dict[str, Any]]:
        """Poll all ServiceActions of the namespace until ``check(objects)`` holds."""
        deadline = time.monotonic() + timeout
        objs: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            objs = self.all()
            if check(objs):
                return objs
            time.sleep(interval)
        summary = {n: summarize(o) for n, o in objs.items()}
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; now:\n{json.dumps(summary, indent=1)}"
        )

    def wait_phase(
        self, names: Iterable[str], phases: Iterable[str] = TERMINAL_PHASES, timeout: float = 120
    ) -> dict[str, dict[str, Any]]:
        names, wanted = list(names), set(phases)
        return self.wait_until(
            f"{names} in {sorted(wanted)}",
            lambda objs: all(phase(objs.get(n, {})) in wanted for n in names),
            timeout,
        )

    def wait_phase_acknowledging(
        self, names: Iterable[str], timeout: float = 240, value: str = "checked by the test"
    ) -> dict[str, dict[str, Any]]:
        """Like ``wait_phase``, acting as the careful person an Unknown run asks for.

        An Unknown run keeps later overlapping runs Queued until someone acknowledges it
        (``emrops.io/acknowledged-at``). Once every object is finished or Queued behind Unknown
        runs only, this acknowledges those runs and waits for everything to finish.
        """
        names = list(names)
        namespace = self.namespace

        def stuck_or_done(objs: dict[str, dict[str, Any]]) -> bool:
            unknown = {f"{namespace}/{n}" for n in names if phase(objs.get(n, {})) == "Unknown"}
            for n in names:
                obj = objs.get(n, {})
                if phase(obj) in TERMINAL_PHASES:
                    continue
                waiting = set((obj.get("status") or {}).get("waitingFor") or ())
                if phase(obj) != "Queued" or not waiting or not waiting <= unknown:
                    return False
            return True

        objs = self.wait_until(f"{names} finished or queued behind Unknown runs", stuck_or_done, timeout)
        for n in names:
            if phase(objs.get(n, {})) == "Unknown":
                self.annotate(n, ACKNOWLEDGED_AT, value)
        return self.wait_phase(names, timeout=timeout)


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def condition(obj_or_status: dict[str, Any], ctype: str) -> dict[str, Any]:
    status = obj_or_status.get("status", obj_or_status) or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def summarize(obj: dict[str, Any]) -> dict[str, Any]:
    st = obj.get("status") or {}
    return {
        "phase": st.get("phase"),
        "message": st.get("message"),
        "attempts": st.get("attempts"),
        "lastError": st.get("lastError"),
        "operationId": st.get("operationId"),
        "waitingFor": st.get("waitingFor"),
        "conditions": {
            c.get("type"): [c.get("status"), c.get("reason"), c.get("message")]
            for c in st.get("conditions") or []
        },
    }


def tagged_action(name: str, action: str, selector: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """``service_action`` with ``action`` on ``selector``, its description tagged with ``marker(name)``
    so its calls can be found in the emulator's log."""
    description = f"{spec.pop('description', 'emrops test')} {marker(name)}"
    return service_action(
        name, actionName=action, componentInstanceSelector=selector, **spec, description=description
    )


# --- additions for the interleaving tests (issue 9) -------------------------------------------

IN_FLIGHT_PHASES = frozenset({"Submitting", "Running"})
GET_OPERATION = "GetOperation"


def get_operation_calls(emulator: Emulator, operation_id: str) -> list[dict[str, Any]]:
    """GetOperation calls asking for ``operation_id``, in order."""
    return [
        call
        for call in emulator.calls()
        if call_action(call) == GET_OPERATION and call_param(call, "OperationId") == operation_id
    ]


def accepted_order(emulator: Emulator, names: Iterable[str]) -> list[str]:
    """The objects (by their tag) of the accepted RunApplicationAction calls, in arrival order."""
    wanted = list(names)
    return [
        name
        for call in emulator.ok_runs()
        for name in wanted
        if marker(name) in str(call_param(call, "Description"))
    ]


def overlapping_operations(emulator: Emulator, operation_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of the given operations that were in progress at the same time (by the emulator's
    StartTime/EndTime, milliseconds; an operation with no EndTime is still running)."""
    ops = emulator.operations()
    spans = sorted(
        (int(ops[i]["StartTime"]), int(ops[i].get("EndTime") or 1 << 62), i)
        for i in operation_ids
        if i in ops
    )
    return [(a[2], b[2]) for n, a in enumerate(spans) for b in spans[n + 1 :] if b[0] < a[1]]


class PhaseLog:
    """Every phase each object was seen in, in order, and every moment two of them were in flight
    (Submitting or Running) at once. Use ``record`` as (or inside) a ``Kube.wait_until`` check."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.phases: dict[str, list[str]] = {n: [] for n in self.names}
        self.waiting_for: dict[str, set[str]] = {n: set() for n in self.names}
        self.together: list[dict[str, str]] = []

    def record(self, objs: dict[str, dict[str, Any]]) -> None:
        in_flight: dict[str, str] = {}
        for name in self.names:
            st = objs.get(name, {}).get("status") or {}
            now = st.get("phase")
            seen = self.phases[name]
            if now and (not seen or seen[-1] != now):
                seen.append(now)
            if now == "Queued":
                self.waiting_for[name].update(st.get("waitingFor") or [])
            if now in IN_FLIGHT_PHASES:
                in_flight[name] = str(now)
        if len(in_flight) > 1:
            self.together.append(in_flight)

    def all_in(self, objs: dict[str, dict[str, Any]], phases: Iterable[str] = TERMINAL_PHASES) -> bool:
        """``record``, then whether every object is in one of ``phases``."""
        self.record(objs)
        wanted = set(phases)
        return all(phase(objs.get(n, {})) in wanted for n in self.names)


def hold(
    kube: Kube,
    what: str,
    check: Callable[[dict[str, dict[str, Any]]], bool],
    seconds: float,
    interval: float = 0.3,
) -> None:
    """Assert that ``check(objects)`` stays true for ``seconds`` (a negative property: nothing
    happens that should not; polled, so it can only miss changes that undo themselves)."""
    deadline = time.monotonic() + seconds
    while True:
        objs = kube.all()
        if not check(objs):
            summary = {n: summarize(o) for n, o in objs.items()}
            raise AssertionError(f"{what} stopped holding; now:\n{json.dumps(summary, indent=1)}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)


def create_in_one_second(
    kube: Kube, build: Callable[[int], list[dict[str, Any]]], tries: int = 5
) -> list[dict[str, Any]]:
    """Create ``build(n)``'s objects with one kubectl call until their creationTimestamps are equal
    (one-second resolution); objects of a failed try are deleted and the next try gets new names.
    Returns the objects as created."""
    for attempt in range(tries):
        objs = build(attempt)
        names = [o["metadata"]["name"] for o in objs]
        kube.create(*objs)
        created = kube.all()
        stamps = {created[n]["metadata"]["creationTimestamp"] for n in names}
        if len(stamps) == 1:
            return [created[n] for n in names]
        kube.kubectl("delete", "serviceactions.emrops.io", *names, "--wait=true")
    raise AssertionError(f"could not create objects within one second in {tries} tries")


def wait_new_second(after: str) -> None:
    """Wait until the wall clock is past the second after the RFC 3339 timestamp ``after``, so an
    object created next has a creationTimestamp at least one second later."""
    moment = datetime.fromisoformat(after.replace("Z", "+00:00")).timestamp()
    remaining = moment + 1.05 - time.time()
    if remaining > 0:
        time.sleep(remaining)


def terminate(op: Operator, timeout: float) -> tuple[int | None, float]:
    """SIGTERM ``op``'s process group and wait up to ``timeout`` seconds for it to exit.

    Returns (exit code, seconds it took); on a timeout the process is SIGKILLed and the code is
    None. Unlike ``Operator.kill``, the caller sees how long the graceful shutdown took."""
    assert op.proc is not None
    start = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(op.proc.pid, signal.SIGTERM)
    try:
        rc: int | None = op.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(op.proc.pid, signal.SIGKILL)
        op.proc.wait(10)
    took = time.monotonic() - start
    with op.log_path.open("ab") as log:
        log.write(f"===== stopped with SIGTERM (rc={op.proc.returncode}, {took:.1f}s)\n".encode())
    return rc, took


def wait_quiet(emulator: Emulator, seconds: float, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until the emulator received no call for ``seconds`` (the operators went idle); returns
    the calls log then."""
    deadline = time.monotonic() + timeout
    calls = emulator.calls()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = emulator.calls()
        if len(now) != len(calls):
            calls, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= seconds:
            return calls
    raise AssertionError(
        f"the emulator kept receiving calls for {timeout}s; last ones: "
        f"{[(call_action(c), call_outcome(c)) for c in calls[-10:]]}"
    )


def wait_calls_stop(
    emulator: Emulator,
    what: str,
    select: Callable[[dict[str, Any]], bool],
    quiet: float,
    timeout: float,
) -> list[dict[str, Any]]:
    """Wait until no call matching ``select`` arrived for ``quiet`` seconds; fail after ``timeout``
    seconds, saying how many came in the last ``quiet`` seconds. Returns the matching calls."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in emulator.calls() if select(c)]
        last = max((float(c["time"]) for c in found), default=0.0)
        if time.time() - last >= quiet:
            return found
        if time.monotonic() > deadline:
            recent = [c for c in found if float(c["time"]) > time.time() - quiet]
            raise AssertionError(
                f"{what}: calls kept coming for {timeout}s: {len(found)} in all, {len(recent)} in the "
                f"last {quiet}s ({sorted({call_outcome(c) for c in recent})})"
            )
        time.sleep(0.25)


def with_labels(obj: dict[str, Any], **labels: str) -> dict[str, Any]:
    """``obj`` with ``metadata.labels`` set."""
    return {**obj, "metadata": {**obj["metadata"], "labels": dict(labels)}}
