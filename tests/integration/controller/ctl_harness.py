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
from pathlib import Path
from typing import Any

import httpx

from fixtures.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID, SECRET_NAME, service_action

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"

TIME_SCALE = 0.01
TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Unknown"})
RUN_ACTION = "RunApplicationAction"


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

    def set_abnormal(self, node: str, abnormal: bool = True, cluster_id: str = CLUSTER_ID) -> None:
        self.http.post(
            "/_emulator/nodes", json={"cluster_id": cluster_id, "node": node, "abnormal": abnormal}
        ).raise_for_status()

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
