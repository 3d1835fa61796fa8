"""ControlPlane's failure paths, with stand-in binaries (the real start is an integration test)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from emrops.controlplane import ControlPlane, ControlPlaneError


def stand_in_assets(folder: Path, etcd_script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, script in {"etcd": etcd_script, "kube-apiserver": "exit 1"}.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
    return folder


def work_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("emrops-cp-*"))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_a_process_exiting_at_start_fails_fast_with_its_log(tmp_path: Path) -> None:
    before = work_dirs()
    assets = stand_in_assets(tmp_path, 'echo "etcd: member cannot start: disk on fire" >&2; exit 3')

    started = time.monotonic()
    with pytest.raises(ControlPlaneError) as info, ControlPlane(assets, start_timeout=30):
        pass

    message = str(info.value)
    assert "etcd exited with status 3" in message
    assert "disk on fire" in message
    assert time.monotonic() - started < 10  # did not wait for the timeout
    assert work_dirs() - before == set()


def test_timeout_names_what_it_waited_for_and_stops_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "etcd.pid"
    assets = stand_in_assets(tmp_path / "bin", f'echo "listening soon" ; echo $$ > {pid_file}; exec sleep 60')

    with pytest.raises(
        ControlPlaneError, match=r"timed out after 1s waiting for etcd /health(.|\n)*listening soon"
    ):
        ControlPlane(assets, start_timeout=1).start()

    assert not alive(int(pid_file.read_text()))


def test_using_a_control_plane_before_start_says_how_to_start_it() -> None:
    with pytest.raises(ControlPlaneError, match="with ControlPlane"):
        _ = ControlPlane().server


def test_a_control_plane_starts_once(tmp_path: Path) -> None:
    cp = ControlPlane(stand_in_assets(tmp_path, "exit 1"), start_timeout=5)
    with pytest.raises(ControlPlaneError):
        cp.start()
    with pytest.raises(ControlPlaneError, match="already started"):
        cp.start()
