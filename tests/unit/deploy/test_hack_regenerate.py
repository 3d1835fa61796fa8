"""hack/regenerate.py: the write-or-check command line every generator script shares."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_paths import ROOT, load_hack_script

regenerate = load_hack_script("regenerate")


def test_writes_every_rendered_file(tmp_path: Path) -> None:
    files = {tmp_path / "a.txt": "alpha\n", tmp_path / "b.txt": "beta\n"}
    assert regenerate.main("Doc.", lambda: files, "make x", []) == 0
    assert {path: path.read_text() for path in files} == files


def test_check_names_stale_and_missing_files_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh, stale, missing = tmp_path / "fresh.txt", tmp_path / "stale.txt", tmp_path / "missing.txt"
    fresh.write_text("same\n")
    stale.write_text("old\n")
    files = {fresh: "same\n", stale: "new\n", missing: "new\n"}
    assert regenerate.main("Doc.", lambda: files, "make x", ["--check"]) == 1
    assert capsys.readouterr().err == f"stale: {stale}, {missing}; run make x\n"
    assert stale.read_text() == "old\n" and not missing.exists()


def test_check_passes_when_every_file_is_fresh(tmp_path: Path) -> None:
    path = tmp_path / "fresh.txt"
    path.write_text("same\n")
    assert regenerate.main("Doc.", lambda: {path: "same\n"}, "make x", ["--check"]) == 0


def test_a_file_in_the_repository_is_named_relative_to_its_root(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "deploy" / "requirements.lock"
    assert regenerate.main("Doc.", lambda: {path: "not the lock\n"}, "make lock", ["--check"]) == 1
    assert capsys.readouterr().err == "stale: deploy/requirements.lock; run make lock\n"


@pytest.mark.parametrize("script", ["gen_docs", "gen_argocd_cm", "lock-requirements"])
def test_every_generator_uses_it(script: str) -> None:
    source = (ROOT / "hack" / f"{script}.py").read_text()
    assert "regenerate.main(" in source and "argparse" not in source
