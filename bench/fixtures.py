"""pytest fixtures over ``bench.harness`` for the fault, security and bad-input suites.

Imported by name into each suite's ``conftest.py`` (pytest registers fixtures found there). Every
process a test starts is stopped at teardown; on a failure the tails of the operator and emulator
logs are attached to the report.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.harness import CRD_FILE, EmulatorProcess, OperatorProcess
from bench.kube import Kube

#: Larger counts under ``make soak`` (``EMROPS_SOAK=1``).
SOAK = os.environ.get("EMROPS_SOAK", "") not in ("", "0", "false")

StartEmulator = Callable[..., EmulatorProcess]
StartOperator = Callable[..., OperatorProcess]


#: What a suite's conftest.py imports (``from bench.fixtures import *``).
__all__ = [
    "kube",
    "namespace",
    "pytest_runtest_makereport",
    "serviceaction_crd",
    "start_emulator",
    "start_operator",
    "workdir",
]


def count(small: int, soak: int) -> int:
    """How many objects a fault test uses: small by default, larger under EMROPS_SOAK=1."""
    return soak if SOAK else small


@pytest.fixture(scope="session")
def serviceaction_crd(control_plane: Any) -> None:
    control_plane.install_crds(CRD_FILE)


@pytest.fixture
def namespace(control_plane: Any, serviceaction_crd: None) -> Iterator[str]:
    name = str(control_plane.create_namespace(prefix="p-"))
    yield name
    # A bare apiserver never finishes deleting a namespace; delete the objects so nothing lingers.
    control_plane.kubectl("delete", "serviceactions", "--all", "-n", name, "--wait=false", check=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def start_emulator(workdir: Path, request: pytest.FixtureRequest) -> Iterator[StartEmulator]:
    """``start_emulator(scenario=None|dict, time_scale=0.01, name="emulator")``."""
    started: list[EmulatorProcess] = []

    def factory(
        scenario: Mapping[str, Any] | None = None, *, time_scale: float = 0.01, name: str = "emulator"
    ) -> EmulatorProcess:
        path = None
        if scenario is not None:
            path = workdir / f"{name}-scenario.yaml"
            path.write_text(yaml.safe_dump(dict(scenario)))
        emu = EmulatorProcess(workdir / name, time_scale=time_scale, scenario=path)
        started.append(emu)
        return emu.start()

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def start_operator(
    control_plane: Any, workdir: Path, namespace: str, request: pytest.FixtureRequest
) -> Iterator[StartOperator]:
    """``start_operator(emulator, *extra_args, name="op1", env={}, credentials=(ak, secret) | None)``.

    Watches only the test's namespace; polls fast (0.2 s .. 1 s) so tests finish quickly.
    """
    started: list[OperatorProcess] = []

    def factory(
        emulator: EmulatorProcess,
        *extra: str,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = ("emrops-demo", "emrops-demo-secret"),
        start: bool = True,
    ) -> OperatorProcess:
        op = OperatorProcess(
            workdir=workdir,
            kubeconfig=control_plane.kubeconfig,
            emr_endpoint=emulator.url,
            name=name or f"op{len(started) + 1}",
            namespaces=(namespace,),
            extra_args=("--poll-initial-seconds", "0.2", "--poll-max-seconds", "1", *extra),
            env=dict(env or {}),
            credentials=credentials,
        )
        started.append(op)
        return op.start() if start else op

    yield factory
    for op in started:
        op.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for op in started:
            print(f"----- {op.name} log tail -----\n{op.log_text()[-6000:]}")


@pytest.fixture
async def kube(control_plane: Any) -> AsyncIterator[Kube]:
    client = await Kube.from_kubeconfig(control_plane.kubeconfig)
    yield client
    await client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call-phase report on the item, so teardown can print logs of a failed test."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
