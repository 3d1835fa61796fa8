"""The operator's Helm release on the e2e cluster, and what the tests ask of it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from node_cluster import NodeCluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "emrops"
#: Where the pod finds the CA of the emulator's TLS front (a ConfigMap mounted read-only).
CA_MOUNT = "/etc/emrops-e2e"
CA_CONFIGMAP = "emrops-e2e-emulator-ca"
CREDENTIALS_SECRET = "emrops-e2e-credentials"
#: Where the examples run: the namespace the tenancy policy lets use the operator's own identity
#: (one example runs with it, as its comment explains).
EXAMPLES_NAMESPACE = "examples"
EMULATOR_CLUSTER = "c-8a3f2e1d9b7c6a50"  # the emulator's demo cluster, the examples' cluster


@dataclass
class Release:
    """``helm`` on one release of the chart, with the values the e2e cluster needs as its base."""

    cluster: NodeCluster
    helm_binary: str
    workdir: Path
    namespace: str
    name: str
    base_values: dict[str, Any]
    _files: int = field(default=0, init=False)

    def helm(self, *args: str, values: dict[str, Any] | None = None, timeout: float = 300) -> str:
        command = [self.helm_binary, *args, "--namespace", self.namespace]
        if values is not None:
            self._files += 1
            path = self.workdir / f"values-{self._files}.yaml"
            path.write_text(yaml.safe_dump(_merge(self.base_values, values)))
            command += ["--values", str(path)]
        env = {
            **os.environ,
            "KUBECONFIG": self.cluster.kubeconfig,
            "HELM_CACHE_HOME": str(self.workdir / "helm-cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm-config"),
            "HELM_DATA_HOME": str(self.workdir / "helm-data"),
        }
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed: {result.stderr.strip()}\n{self.diagnostics()}"
            )
        return result.stdout

    def install(self, values: dict[str, Any] | None = None) -> str:
        return self.helm("install", self.name, str(CHART), "--wait", "--timeout=180s", values=values or {})

    def upgrade(self, values: dict[str, Any]) -> str:
        return self.helm("upgrade", self.name, str(CHART), "--wait", "--timeout=180s", values=values)

    def rollback(self, revision: int) -> str:
        return self.helm("rollback", self.name, str(revision), "--wait", "--timeout=180s")

    def uninstall(self) -> str:
        return self.helm("uninstall", self.name, "--wait", "--timeout=180s")

    # --- the release's objects -------------------------------------------------------------------

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=operator"

    def deployment(self) -> dict[str, Any]:
        (item,) = self.cluster.kubectl_json("get", "deployment", "-n", self.namespace, "-l", self.selector)[
            "items"
        ]
        return dict(item)

    def pods(self, *, running_only: bool = True) -> list[dict[str, Any]]:
        items = self.cluster.kubectl_json("get", "pods", "-n", self.namespace, "-l", self.selector)["items"]
        if running_only:
            items = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return list(items)

    def lease_holder(self) -> str | None:
        lease = self.cluster.kubectl_json(
            "get", "lease", self.deployment()["metadata"]["name"], "-n", self.namespace
        )
        return lease["spec"].get("holderIdentity") or None

    def operator_args(self) -> list[str]:
        (container,) = self.deployment()["spec"]["template"]["spec"]["containers"]
        return list(container["args"])

    def logs(self, pod: str, *, previous: bool = False) -> str:
        args = ["logs", "-n", self.namespace, pod, "--tail=200"]
        if previous:
            args.append("--previous")
        return self.cluster.kubectl(*args, check=False).stdout

    def diagnostics(self) -> str:
        """Pods, events and operator logs, for a failure message."""
        out = [self.cluster.kubectl("get", "pods,deploy,rs", "-A", "-o", "wide", check=False).stdout]
        out.append(
            self.cluster.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp", check=False).stdout[
                -4000:
            ]
        )
        for pod in self.pods(running_only=False):
            out.append(
                f"--- logs of {pod['metadata']['name']}:\n{self.logs(pod['metadata']['name'])[-3000:]}"
            )
        return "\n".join(out)


def wait_for(
    what: str,
    check: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.25,
    explain: Callable[[], str] = str,
) -> Any:
    """Poll ``check`` until it returns something truthy; that value, or AssertionError at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{explain()}")
        time.sleep(interval)


def pod_token(cluster: NodeCluster, pod: dict[str, Any]) -> str:
    """The ServiceAccount token the kubelet mounted into ``pod`` (read from the node's disk)."""
    uid = pod["metadata"]["uid"]
    volumes = cluster.work_dir / "kubelet" / "pods" / uid / "volumes" / "kubernetes.io~projected"
    (token,) = volumes.glob("kube-api-access-*/token")
    return token.read_text().strip()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
