"""``/healthz`` and ``/readyz`` of the real ``emrops run`` process against the real apiserver.

Readiness waits for the watch's initial listing; with nothing matching what the process watches
(here: a label selector no object carries) no event ever comes, and it must be ready all the same.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emrops.controlplane import ControlPlane
from harness.objects import service_action
from harness.operator import operator_command, operator_env
from harness.processes import stop_process

pytestmark = pytest.mark.integration

Start = Callable[..., int]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def labelled(name: str, team: str) -> dict[str, Any]:
    manifest = service_action(name)
    manifest["metadata"]["labels"] = {"team": team}
    return manifest


@pytest.fixture
def start_operator(
    control_plane: ControlPlane, emulator: Any, namespace: str, tmp_path: Path
) -> Iterator[Start]:
    """Start ``emrops run`` on ``namespace`` with a health port; returns the port."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> int:
        port = free_port()
        command = [*operator_command(emulator.url, [namespace], *extra), "--health-port", str(port)]
        log = (tmp_path / f"operator-{len(started)}.log").open("wb")
        started.append(
            subprocess.Popen(command, env=operator_env(control_plane.kubeconfig), stdout=log, stderr=log)
        )
        return port

    yield start
    for process in started:
        stop_process(process)


def probe(port: int, path: str) -> tuple[int, dict[str, Any]] | None:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = response.json()
    return response.status_code, body


def wait_ready(port: int, timeout: float = 60) -> list[tuple[int, dict[str, Any]] | None]:
    """Poll /readyz until 200; returns every answer seen on the way."""
    seen: list[tuple[int, dict[str, Any]] | None] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe(port, "/readyz")
        seen.append(answer)
        if answer is not None and answer[0] == 200:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"/readyz never answered 200 within {timeout}s; last answers: {seen[-3:]}")


def test_ready_once_the_initial_listing_is_in_and_alive_throughout(
    control_plane: ControlPlane, namespace: str, start_operator: Start
) -> None:
    for i in range(3):
        manifest = labelled(f"health-{i}", "a")
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    port = start_operator("--label-selector", "team=a")
    seen = wait_ready(port)
    not_ready = [a for a in seen if a is not None and a[0] != 200]
    assert all(a[0] == 503 and a[1]["status"] == "not ready" and a[1]["problems"] for a in not_ready)
    assert probe(port, "/healthz") == (200, {"status": "ok"})


def test_ready_when_nothing_matches_what_it_watches(
    control_plane: ControlPlane, namespace: str, start_operator: Start
) -> None:
    manifest = labelled("not-mine", "b")
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    port = start_operator("--label-selector", "team=nobody")
    wait_ready(port)
