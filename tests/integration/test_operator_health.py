"""``/healthz`` and ``/readyz`` of the real ``emrops run`` process against the real apiserver.

Readiness waits for the watch's initial listing; with nothing matching what the process watches
(here: a label selector no object carries) no event ever comes, and it must be ready all the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emrops.controlplane import ControlPlane
from harness.objects import service_action
from harness.operator import Operator

pytestmark = pytest.mark.integration

Start = Callable[..., int]


def labelled(name: str, team: str) -> dict[str, Any]:
    manifest = service_action(name)
    manifest["metadata"]["labels"] = {"team": team}
    return manifest


@pytest.fixture
def start_operator(
    control_plane: ControlPlane, emulator: Any, namespace: str, tmp_path: Path
) -> Iterator[Start]:
    """Start ``emrops run`` on ``namespace`` with a health port; returns the port at once, without
    waiting for ``/readyz`` (the tests watch the way up)."""
    started: list[Operator] = []

    def start(*extra: str) -> int:
        op = Operator(
            tmp_path,
            control_plane.kubeconfig,
            emulator.url,
            name=f"op{len(started)}",
            namespaces=[namespace],
            args=extra,
            serve=True,
        )
        started.append(op)
        op.start(ready=False)
        return op.health_port

    yield start
    for op in started:
        op.stop()


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


def test_the_harness_waits_for_readyz_unless_told_not_to(
    control_plane: ControlPlane, emulator: Any, namespace: str, tmp_path: Path
) -> None:
    """``Operator.start()`` (with ``serve``) returns once ``/readyz`` answers 200;
    ``start(ready=False)`` returns at once, before the process serves anything: what the fixture
    above relies on to see the way up."""
    op = Operator(tmp_path, control_plane.kubeconfig, emulator.url, namespaces=[namespace], serve=True)
    try:
        op.start(ready=False)
        assert probe(op.health_port, "/readyz") is None, "start(ready=False) waited for the process"
        wait_ready(op.health_port)
        op.restart()
        answer = probe(op.health_port, "/readyz")
        assert answer is not None and answer[0] == 200, answer
    finally:
        op.stop()
