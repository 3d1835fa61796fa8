"""``emrops emulator`` as a child process on a free port, with its ``/_emulator/`` inspection API.

``Emulator(workdir, scenario=..., time_scale=..., access_keys=..., args=...).start()``; ``restart()``
keeps the port (the state is in memory: it is lost). The inspection API (docs/emulator.md):
``calls()`` (the calls log, see ``harness.objects``), ``faults()``, ``state()``, ``set_node()``.
``as_httpx(request)`` sends a request signed by ``emrops.emr.wire`` with the harness's own client.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from emrops.emr.http import HttpRequest
from harness.calls import GET_OPERATION, RUN_ACTION, accepted, call_action, call_outcome, call_param
from harness.env import child_env
from harness.objects import CLUSTER_ID, marker
from harness.processes import PYTHON, READY_TIMEOUT, Child, wait_for

#: The emulator's default time scale in tests: an operation step of 10 s takes 0.1 s.
TIME_SCALE = 0.01
#: The clusters of ``clusters_scenario``: c-bench0001, c-bench0002, ... (the demo layout each).
GENERATED_PREFIX = "c-bench"


def as_httpx(request: HttpRequest) -> httpx.Request:
    """``request`` (built by ``emrops.emr.wire.build_request``) as an ``httpx.Request``, byte for byte:
    the tests that forge, replay or tamper with signed requests send them this way."""
    return httpx.Request(request.method, str(request.url), headers=dict(request.headers))


def generated_cluster_id(index: int) -> str:
    """The id of ``clusters_scenario``'s cluster number ``index`` (from 0)."""
    return f"{GENERATED_PREFIX}{index + 1:04d}"


def clusters_scenario(clusters: int, *, step_seconds: float) -> dict[str, Any]:
    """A scenario of ``clusters`` copies of the demo cluster, with the emulator's rate limit out of
    the way (throttling is injected on purpose where a test wants it)."""
    return {
        "clusters": [{"generate": {"count": clusters, "prefix": GENERATED_PREFIX, "start": 1, "width": 4}}],
        "rate_limit": {"qps": 1_000_000, "burst": 1_000_000},
        "engine": {"step_seconds": step_seconds},
    }


class Emulator(Child):
    """An emulator process and its unsigned inspection API."""

    def __init__(
        self,
        workdir: Path,
        *,
        scenario: Path | str | Mapping[str, Any] | None = None,
        time_scale: float = TIME_SCALE,
        access_keys: Sequence[str] = (),
        args: Sequence[str] = (),
        port: int = 0,
        name: str = "emulator",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(scenario, Mapping):
            path = workdir / f"{name}-scenario.yaml"
            path.write_text(yaml.safe_dump(dict(scenario)), encoding="utf-8")
            scenario = path
        self.workdir = workdir
        self.ready = workdir / f"{name}.ready"
        self.port = port
        self.url = ""
        self._extra = [*(["--scenario", str(scenario)] if scenario is not None else [])]
        self._extra += [arg for key in access_keys for arg in ("--access-key", key)]
        self._extra += ["--time-scale", str(time_scale), *args]
        self._http: httpx.Client | None = None
        super().__init__(name, [], child_env(), workdir / f"{name}.log")

    def start(self) -> Emulator:
        self.ready.unlink(missing_ok=True)
        self.cmd = [PYTHON, "-m", "emrops", "emulator", "--host", "127.0.0.1", "--port", str(self.port)]
        self.cmd += ["--ready-file", str(self.ready), *self._extra]
        super().start()

        def ready() -> str | None:
            if problem := self.exited():
                raise RuntimeError(f"the emulator did not start: {problem}")
            return self.ready.read_text().strip() if self.ready.exists() else None

        try:
            self.url = wait_for(ready, timeout=READY_TIMEOUT, interval=0.02, what="the emulator's ready file")
        except TimeoutError:
            self.stop()
            raise
        self.url = self.url.rstrip("/")
        self.port = httpx.URL(self.url).port or self.port
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30)
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.kill(sig)

    def close(self) -> None:
        """Stop the process and close the inspection client."""
        self.stop()
        if self._http is not None:
            with contextlib.suppress(Exception):
                self._http.close()
            self._http = None

    def restart(self) -> None:
        """Stop and start again on the same port (the state is lost)."""
        self.stop()
        self.start()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        """``host:port``, as the official SDK's ``Config.endpoint`` wants it."""
        return self.url.removeprefix("http://")

    def log(self) -> str:
        return self.log_text()

    # --- the inspection API ------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self._http is not None, "the emulator was never started"
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """The calls log (``harness.objects`` reads its records); with ``action``, those calls only."""
        params = {"action": action} if action else None
        return list(self._json("GET", "/_emulator/calls", params=params)["calls"])

    def faults(self, spec: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add fault rules (one or a list; docs/emulator.md, "Faults"); returns the active rules."""
        body = dict(spec) if isinstance(spec, Mapping) else [dict(rule) for rule in spec]
        return list(self._json("POST", "/_emulator/faults", json=body)["faults"])

    def clear_faults(self) -> None:
        self._json("DELETE", "/_emulator/faults")

    def reset(self) -> None:
        self._json("POST", "/_emulator/reset")

    def state(self) -> dict[str, Any]:
        return dict(self._json("GET", "/_emulator/state"))

    def set_node(
        self, node: str, abnormal: bool = True, *, cluster_id: str = CLUSTER_ID, state: str | None = None
    ) -> dict[str, Any]:
        """Mark ``node`` abnormal (its instances fail), and with ``state`` set its ListNodes NodeState."""
        body: dict[str, Any] = {"cluster_id": cluster_id, "node": node, "abnormal": abnormal}
        if state is not None:
            body["state"] = state
        return dict(self._json("POST", "/_emulator/nodes", json=body))

    # --- readings built on the calls log and the state ------------------------------------

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


def get_operation_calls(emulator: Emulator, operation_id: str) -> list[dict[str, Any]]:
    """GetOperation calls asking for ``operation_id``, in order."""
    return [call for call in emulator.calls(GET_OPERATION) if call_param(call, "OperationId") == operation_id]


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
