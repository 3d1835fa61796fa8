"""``emrops demo``: the whole product on this machine, with nothing from outside.

Starts a real local control plane (etcd + kube-apiserver) with the CRD from ``crds/``, the EMR
emulator and the operator as subprocesses (``emrops emulator``, ``emrops run``), applies
``examples/*.yaml`` into a namespace, shows their progress live until all are done (or the
timeout), prints a summary, and stops everything, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

HELP = "run the demo: local control plane + EMR emulator + operator + the examples"
DESCRIPTION = """\
Run the whole product locally: a real kube-apiserver and etcd, the EMR emulator (default demo
cluster c-8a3f2e1d9b7c6a50 in cn-hangzhou), and the emrops operator; apply examples/*.yaml,
watch them run to the end, then print a summary. Run it from a checkout of the repository
(it needs crds/ and examples/). Ctrl-C stops everything.
"""

FINISHED = ("Succeeded", "Failed", "Unknown")
#: Waiting for its window (spec.notBefore): settled as far as the demo goes, not a failure.
SCHEDULED = "Scheduled"
# The emulator's demo access key (docs/emulator.md), given to the operator as its own identity so
# that examples naming no credentials Secret run too. Written out rather than imported: the demo
# runs the emulator as a process and never imports it.
DEMO_IDENTITY = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "emrops-demo",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "emrops-demo-secret",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default="emrops-demo", help="namespace for the examples (emrops-demo)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for every run (300)")
    parser.add_argument(
        "--time-scale", type=float, default=0.2, help="emulator time scale: 0.2 runs 5x faster (0.2)"
    )
    parser.add_argument("--examples", type=Path, default=None, help="folder of manifests (examples/)")


class DemoError(Exception):
    """The demo cannot run (outside a checkout, a process failed to start, ...)."""


def find_repo_dir(name: str, start: Path | None = None) -> Path:
    """``name`` (crds, examples) in the checkout holding this package, else in cwd or above."""
    candidates = [Path(__file__).resolve().parents[2]]
    here = (start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    for base in candidates:
        if (base / name).is_dir() and (base / "pyproject.toml").is_file():
            return base / name
    raise DemoError(f"no {name}/ folder found: run `emrops demo` from a checkout of the emrops repository")


@contextlib.contextmanager
def _process(command: Sequence[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            raise DemoError(f"the emulator exited with code {process.returncode}; see {log}")
        time.sleep(0.1)
    raise DemoError(f"the emulator did not start within {timeout:.0f}s; see {log}")


def _rows(objects: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for obj in sorted(objects, key=lambda o: o["metadata"]["name"]):
        status = obj.get("status") or {}
        progress = (status.get("progress") or {}).get("message", "")
        rows.append(
            [
                obj["metadata"]["name"],
                obj["spec"].get("actionName", ""),
                status.get("phase", "-"),
                status.get("operationId", ""),
                progress,
                (status.get("message") or "")[:70],
            ]
        )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _duration(status: dict[str, Any]) -> str:
    start, end = status.get("startTime") or status.get("submittedAt"), status.get("finishedAt")
    if not start or not end:
        return "-"
    seconds = (
        datetime.fromisoformat(end.replace("Z", "+00:00"))
        - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()
    return f"{max(0.0, seconds):.1f}s"


def summary(objects: list[dict[str, Any]]) -> str:
    rows = []
    for obj in sorted(objects, key=lambda o: o["metadata"]["name"]):
        status = obj.get("status") or {}
        abn = (
            ", ".join(a.get("nodeName") or a.get("nodeId", "") for a in status.get("abnInstances") or [])
            or "none"
        )
        rows.append(
            [
                obj["metadata"]["name"],
                status.get("phase", "-"),
                status.get("operationId", "-"),
                abn,
                str(status.get("attempts", 0)),
                _duration(status),
            ]
        )
    return _table(["NAME", "PHASE", "OPERATION", "ABNORMAL INSTANCES", "ATTEMPTS", "DURATION"], rows)


def _watch(cp: Any, namespace: str, timeout: float, out: TextIO) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    live = out.isatty()
    last = ""
    objects: list[dict[str, Any]] = []
    while True:
        listing = cp.kubectl("get", "serviceactions", "-n", namespace, "-o", "json")
        objects = json.loads(listing.stdout)["items"]
        view = _table(["NAME", "ACTION", "PHASE", "OPERATION", "PROGRESS", "MESSAGE"], _rows(objects))
        if view != last:
            if live:
                out.write("\x1b[2J\x1b[H")  # clear the screen, cursor home
            out.write(f"kubectl get svcact -n {namespace}   ({time.strftime('%H:%M:%S')})\n{view}\n\n")
            out.flush()
            last = view
        _approve_planned(cp, namespace, objects, out)
        done = objects and all(
            (o.get("status") or {}).get("phase") in (*FINISHED, SCHEDULED) for o in objects
        )
        if done or time.monotonic() > deadline:
            return objects
        time.sleep(1.0)


def _approve_planned(cp: Any, namespace: str, objects: list[dict[str, Any]], out: TextIO) -> None:
    """Play the person who reviews a suspended example's plan and approves it (spec.suspend false)."""
    for obj in objects:
        status = obj.get("status") or {}
        if (
            status.get("phase") == "Suspended"
            and status.get("plan")
            and (obj.get("spec") or {}).get("suspend")
        ):
            name = obj["metadata"]["name"]
            out.write(f"{name}: {status.get('message')}\n  approving it: kubectl patch svcact {name} "
                      "--type=merge -p '{\"spec\":{\"suspend\":false}}'\n\n")  # fmt: skip
            cp.kubectl("patch", "serviceactions", name, "-n", namespace, "--type=merge",
                       "-p", '{"spec":{"suspend":false}}')  # fmt: skip


def main(args: argparse.Namespace) -> int:
    try:
        return _run(args, sys.stdout)
    except DemoError as exc:
        print(f"emrops demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nemrops demo: interrupted; everything was stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from emrops.controlplane import ControlPlane

    crds = find_repo_dir("crds")
    examples = args.examples or find_repo_dir("examples")
    manifests = sorted(Path(examples).glob("*.yaml"))
    if not manifests:
        raise DemoError(f"no manifests in {examples}")
    work = Path(tempfile.mkdtemp(prefix="emrops-demo-"))
    out.write(f"Starting the local control plane (logs in {work}) ...\n")
    out.flush()
    with ControlPlane() as cp:
        cp.install_crds(crds)
        cp.create_namespace(args.namespace)
        env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig)}
        python = sys.executable
        ready = work / "emulator.url"
        emulator_log, operator_log = work / "emulator.log", work / "operator.log"
        emulator_cmd = [python, "-m", "emrops", "emulator", "--port", "0",
                        "--time-scale", str(args.time_scale), "--ready-file", str(ready)]  # fmt: skip
        with _process(emulator_cmd, emulator_log, env) as emulator:
            url = _wait_for_file(ready, emulator, emulator_log)
            out.write(f"EMR emulator at {url}\n")
            # The operator's identity serves no namespace unless the tenancy policy grants it
            # (docs/security.md): the demo grants its own namespace, on the emulator's clusters.
            policy = work / "tenancy.yaml"
            policy.write_text(
                f'operatorIdentity:\n  - {{namespace: "{args.namespace}", regions: ["*"], clusters: ["*"]}}\n'
            )
            operator_cmd = [python, "-m", "emrops", "run", "-n", args.namespace, "--emr-endpoint", url,
                            "--metrics-port", "0", "--health-port", "0", "--poll-initial-seconds", "1",
                            "--poll-max-seconds", "5", "--tenancy-policy", str(policy)]  # fmt: skip
            with _process(operator_cmd, operator_log, {**env, **DEMO_IDENTITY}) as operator:
                out.write(f"Operator started (log: {operator_log}); applying {len(manifests)} manifests\n\n")
                for manifest in manifests:
                    cp.kubectl("apply", "-n", args.namespace, "-f", str(manifest))
                objects = _watch(cp, args.namespace, args.timeout, out)
                if operator.poll() is not None:
                    raise DemoError(
                        f"the operator exited with code {operator.returncode}; see {operator_log}"
                    )
    actions = [o for o in objects if o.get("kind") == "ServiceAction"]
    out.write("Summary\n" + summary(actions) + "\n")
    unfinished = [o for o in actions if (o.get("status") or {}).get("phase") not in (*FINISHED, SCHEDULED)]
    if unfinished:
        out.write(f"\n{len(unfinished)} ServiceAction(s) did not finish within {args.timeout:.0f}s\n")
        return 1
    failed = [o for o in actions if (o.get("status") or {}).get("phase") not in ("Succeeded", SCHEDULED)]
    return 1 if failed else 0
