"""`emrops demo` as a user runs it: its own control plane, the emulator and the operator.

Here on two examples only (the demo's Secret and the example that names no Secret), so that it
stays quick: an example without ``spec.credentialsSecretRef`` runs with the operator's own
identity, which the demo gives it (the emulator's demo key) along with a tenancy grant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emrops.controlplane import AssetsNotFoundError, find_assets
from fixtures.controlplane import missing

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_demo_runs_an_example_with_the_operators_own_identity(tmp_path: Path) -> None:
    try:
        find_assets()
    except AssetsNotFoundError as exc:
        missing(f"no local control plane: {exc}")
    for name in ("credentials-secret.yaml", "restart-hiveserver2-operator-identity.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    # No cloud credentials from the runner's environment: the demo's own must be what works.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
    result = subprocess.run(
        [sys.executable, "-m", "emrops", "demo", "--examples", str(tmp_path), "--time-scale", "0.01",
         "--timeout", "120"],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = result.stdout.split("\nSummary\n", 1)[1]
    (row,) = [
        line for line in summary.splitlines() if line.startswith("restart-hiveserver2-operator-identity ")
    ]
    assert row.split()[1] == "Succeeded", summary
