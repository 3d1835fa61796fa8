"""``emrops run`` refuses to start without a Kubernetes config, and takes a pod's for one."""

from __future__ import annotations

from pathlib import Path

import pytest

from emrops.controller import cli


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path / ".kube" / "config"


def test_no_config_anywhere_is_a_problem_naming_the_path(no_config: Path) -> None:
    problem = cli._kubeconfig_problem()
    assert problem is not None and str(no_config) in problem


def test_in_a_pod_the_service_account_is_the_config(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert cli._kubeconfig_problem() is None


def test_an_explicit_kubeconfig_wins_over_the_pod(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBECONFIG", str(no_config))
    assert cli._kubeconfig_problem() is not None, "a KUBECONFIG that is not there is still a problem"
