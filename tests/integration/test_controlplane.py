"""The real local control plane: what it serves, and that nothing outlives the run that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from emrops.controlplane import ControlPlane, find_kubectl

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    """True while ``pid`` runs; zombies (exited, not yet reaped) count as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def all_gone(pids: list[int], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


def test_serves_kubernetes_1_36_with_admin_rights(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.36.")
    assert control_plane.kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"
    assert control_plane.server.startswith("https://127.0.0.1:")


def test_service_account_tokens_authenticate_with_rbac(control_plane: ControlPlane, namespace: str) -> None:
    """The SA key pair works end to end: TokenRequest issues a token the apiserver accepts."""
    control_plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = control_plane.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()

    def can_i(*args: str) -> str:
        # Not cp.kubectl: its kubeconfig's admin certificate would authenticate before the token.
        result = subprocess.run(
            [
                str(find_kubectl(control_plane.assets)),
                "--kubeconfig=/dev/null",
                f"--server={control_plane.server}",
                f"--certificate-authority={control_plane.ca_file}",
                f"--token={token}",
                *("auth", "can-i", *args, "-n", namespace),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip()

    assert can_i("get", "namespaces") == "no"

    assert can_i("get", "serviceactions") == "no"
    control_plane.kubectl(
        "create", "role", "reader", "--verb=get,list", "--resource=serviceactions.emrops.io", "-n", namespace
    )
    control_plane.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    assert can_i("get", "serviceactions") == "yes"
    assert can_i("get", "secrets") == "no"


def test_kubeconfig_is_usable_by_a_separate_kubectl(control_plane: ControlPlane) -> None:
    result = subprocess.run(
        [str(control_plane.assets / "kubectl"), "get", "namespace", "default", "-o", "name"],
        env=control_plane.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "namespace/default"


# --- nothing left behind -----------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from emrops.controlplane import ControlPlane, find_kubectl

    with ControlPlane() as cp:
        print(json.dumps({"pids": list(cp.pids.values()), "work_dir": str(cp.work_dir)}), flush=True)
        time.sleep(120)
    """
)


def start_holder() -> tuple[subprocess.Popen[str], list[int], Path]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if not line:
        holder.wait(timeout=10)
        pytest.fail(f"control plane holder failed: {holder.stderr.read() if holder.stderr else ''}")
    info = json.loads(line)
    assert len(info["pids"]) == 2
    assert all(alive(pid) for pid in info["pids"])
    return holder, info["pids"], Path(info["work_dir"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_signal_stops_apiserver_and_etcd_and_removes_the_work_dir(
    control_plane: ControlPlane, sig: signal.Signals
) -> None:
    holder, pids, work_dir = start_holder()

    holder.send_signal(sig)
    holder.communicate(timeout=60)

    assert holder.returncode != 0
    assert all_gone(pids)
    assert not work_dir.exists()


def test_sigkill_of_the_parent_still_kills_apiserver_and_etcd(control_plane: ControlPlane) -> None:
    holder, pids, work_dir = start_holder()

    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=60)

    try:
        assert all_gone(pids)  # PDEATHSIG; only the temporary folder is left behind
    finally:
        subprocess.run(["rm", "-rf", str(work_dir)], check=False)


FAILING_SESSION = textwrap.dedent(
    """
    import json, os

    def test_fails(control_plane):
        with open(os.environ["PIDS_FILE"], "w") as out:
            json.dump(list(control_plane.pids.values()), out)
        assert False, "this test fails on purpose"
    """
)


def test_a_failing_pytest_session_leaves_no_process(control_plane: ControlPlane, tmp_path: Path) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(FAILING_SESSION)
    pids_file = tmp_path / "pids.json"
    env = {**os.environ, "PIDS_FILE": str(pids_file), "PYTHONPATH": str(TESTS)}

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "fixtures.controlplane",
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "this test fails on purpose" in result.stdout
    pids = json.loads(pids_file.read_text())
    assert len(pids) == 2
    assert all_gone(pids, timeout=1)  # stopped by the fixture, before pytest exited
