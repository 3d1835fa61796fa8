"""Fixtures for the controller's integration tests (the processes and objects are ``harness/``'s).

Each test module gets its own namespace, its own emulator process (faults are global to an
emulator, so modules that inject faults must not share one) and its own operator processes.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.emulator import Emulator
from harness.kube import Kube
from harness.operator import Operator, OperatorFactory

_STARTED_OPERATORS: list[Operator] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tail of every operator log of the failing test's module."""
    report = yield
    if report.failed:
        for op in _STARTED_OPERATORS:
            if op.log_path.parent.name == item.path.stem:
                report.sections.append((f"operator {op.label} log tail", op.tail(80)))
    return report


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crd_installed(control_plane: Any) -> None:
    """The ServiceAction CRD (installed from crds/ by the control_plane fixture), established."""
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/serviceactions.emrops.io"
    )


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Logs of this module's emulator and operators (pytest keeps the last runs' temp dirs)."""
    return tmp_path_factory.mktemp(request.path.stem, numbered=False)


@pytest.fixture(scope="module")
def module_emulator(workdir: Path) -> Iterator[Emulator]:
    """An emulator of this module alone (faults are global to an emulator)."""
    emu = Emulator(workdir).start()
    yield emu
    emu.close()


@pytest.fixture(scope="module")
def kube(control_plane: Any, crd_installed: None, request: pytest.FixtureRequest) -> Iterator[Kube]:
    """A fresh namespace for this module (deleted afterwards, without waiting)."""
    short = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:30]
    ns = f"ctl-{short}-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", ns)
    yield Kube(control_plane, ns)
    control_plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator_factory(
    control_plane: Any, kube: Kube, module_emulator: Emulator, workdir: Path
) -> Iterator[OperatorFactory]:
    """Start `emrops run` processes on this module's namespace; all are killed at teardown.

    ``operator_factory(*extra_args, start=True, env=None, emulator=None)``.
    """
    started: list[Operator] = []

    def factory(
        *extra: str, start: bool = True, env: dict[str, str] | None = None, emulator: Emulator | None = None
    ) -> Operator:
        op = Operator(
            workdir,
            control_plane.kubeconfig,
            (emulator or module_emulator).url,
            name=f"op{len(started) + 1}",
            namespaces=[kube.namespace],
            args=extra,
            env=env,
        )
        started.append(op)
        _STARTED_OPERATORS.append(op)
        if start:
            op.start()
        return op

    yield factory
    for op in started:
        op.stop()
        _STARTED_OPERATORS.remove(op)


@pytest.fixture
def operators(operator_factory: OperatorFactory) -> Iterator[OperatorFactory]:
    """``operator_factory``, with every operator this test started stopped when it ends."""
    started: list[Operator] = []

    def start(*args: str) -> Operator:
        op = operator_factory(*args)
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded random source; the seed is printed so a failing run can be replayed."""
    seed = int(os.environ.get("EMROPS_TEST_SEED", random.randrange(1 << 30)))
    print(f"EMROPS_TEST_SEED={seed}")
    return random.Random(seed)
