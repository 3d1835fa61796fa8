"""The chart's operator pod run by podman as the kubelet would run it (helpers, not fixtures).

``PodmanPod`` turns the rendered Deployment into `podman run` flags: the pod's and container's
security context (user and groups, read-only root, capabilities, no privilege escalation), its
volumes (emptyDir as a tmpfs, configMap as a read-only folder of its keys), its memory limit, its
environment (values, the downward API, Secret references resolved through the apiserver), and
the ServiceAccount mount and ``KUBERNETES_SERVICE_*`` variables the kubelet adds. A field this
module does not know makes it fail rather than run the container differently from the chart:
when the chart gains one, the translation must learn it.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where Kubernetes mounts a pod's ServiceAccount token, CA and namespace.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: crun refuses the hybrid cgroup hierarchy of some machines (ours); runc runs there.
RUNTIME = "runc"

_POD_SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}
_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "capabilities",
    "seccompProfile",
}
_MEMORY_UNITS = {"Ki": "k", "Mi": "m", "Gi": "g"}

#: A Secret's data by (namespace, name).
SecretReader = Callable[[str, str], dict[str, str]]
#: A ConfigMap's data by (namespace, name).
ConfigMapReader = Callable[[str, str], dict[str, str]]


def podman(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    """Run podman; its stdout, or AssertionError with its stderr."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    assert result.returncode == 0, f"podman {args[0]} failed ({result.returncode}): {result.stderr}"
    return result.stdout


def ulimit_flags() -> list[str]:
    """podman's default ulimits exceed the hard limits of some machines: stay within them."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def memory(quantity: str) -> str:
    """A Kubernetes memory quantity (``256Mi``) as podman writes it (``256m``)."""
    for suffix, unit in _MEMORY_UNITS.items():
        if quantity.endswith(suffix):
            return quantity.removesuffix(suffix) + unit
    assert quantity.isdigit(), f"memory quantity {quantity!r} not understood"
    return quantity


def read_secret(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> SecretReader:
    """A SecretReader using ``kubectl`` (the admin's, as the kubelet reads Secrets)."""

    def read(namespace: str, name: str) -> dict[str, str]:
        secret = json.loads(kubectl("get", "secret", name, "-n", namespace, "-o", "json").stdout)
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    return read


def read_config_map(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> ConfigMapReader:
    """A ConfigMapReader using ``kubectl`` (as the kubelet reads the ConfigMaps it mounts)."""

    def read(namespace: str, name: str) -> dict[str, str]:
        config = json.loads(kubectl("get", "configmap", name, "-n", namespace, "-o", "json").stdout)
        return dict(config.get("data") or {})

    return read


@dataclass
class PodmanPod:
    """One replica of the rendered ``deployment``, named ``name``, as a podman container."""

    deployment: dict[str, Any]
    name: str
    apiserver_port: int
    service_account_dir: Path
    read_secret: SecretReader
    #: For configMap volumes (the tenancy policy): their files are written next to the token's.
    read_config_map: ConfigMapReader | None = None
    #: Values of the Secret-backed variables: passed to podman through its environment (``--env
    #: NAME``), never on its command line.
    secret_env: dict[str, str] = field(default_factory=dict, init=False)

    @property
    def namespace(self) -> str:
        return str(self.deployment["metadata"]["namespace"])

    @property
    def pod_spec(self) -> dict[str, Any]:
        return dict(self.deployment["spec"]["template"]["spec"])

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod_spec["containers"]
        return dict(container)

    def port(self, port: int | str) -> int:
        """A container port by number or by name, as probes and Services refer to it."""
        if isinstance(port, int):
            return port
        (number,) = [p["containerPort"] for p in self.container["ports"] if p["name"] == port]
        return int(number)

    def probes(self) -> Iterator[tuple[str, str, int]]:
        """(probe, path, port) of every HTTP probe the container declares."""
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in self.container:
                get = self.container[probe]["httpGet"]
                yield probe, str(get["path"]), self.port(get["port"])

    def security_flags(self) -> list[str]:
        pod, ctr = self.pod_spec["securityContext"], self.container["securityContext"]
        assert set(pod) <= _POD_SECURITY, f"pod securityContext: {set(pod) - _POD_SECURITY}"
        assert set(ctr) <= _CONTAINER_SECURITY, f"securityContext: {set(ctr) - _CONTAINER_SECURITY}"
        user = ctr.get("runAsUser", pod.get("runAsUser"))
        group = ctr.get("runAsGroup", pod.get("runAsGroup"))
        assert user is not None and group is not None, "the test runs the chart's explicit ids only"
        if ctr.get("runAsNonRoot", pod.get("runAsNonRoot")):
            assert user != 0, "runAsNonRoot with uid 0: the kubelet would refuse to start it"
        for profile in (pod.get("seccompProfile"), ctr.get("seccompProfile")):
            # podman applies its default profile, as RuntimeDefault asks.
            assert profile in (None, {"type": "RuntimeDefault"}), profile
        flags = ["--user", f"{user}:{group}"]
        if "fsGroup" in pod:
            flags += ["--group-add", str(pod["fsGroup"])]
        if ctr.get("readOnlyRootFilesystem"):
            # Without podman's own tmpfs mounts on /tmp, /run and /var/tmp: only the pod's volumes.
            flags += ["--read-only", "--read-only-tmpfs=false"]
        if ctr.get("allowPrivilegeEscalation") is False:
            flags += ["--security-opt", "no-new-privileges"]
        capabilities = ctr.get("capabilities", {})
        flags += [f"--cap-drop={c}" for c in capabilities.get("drop", [])]
        flags += [f"--cap-add={c}" for c in capabilities.get("add", [])]
        return flags

    def volume_flags(self) -> list[str]:
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        flags = []
        for mount in self.container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                flags += ["--volume", f"{self._config_map_dir(volume, mount)}:{mount['mountPath']}:ro"]
                continue
            assert set(volume) == {"name", "emptyDir"}, f"volume {volume} is not an emptyDir"
            assert not mount.get("readOnly") and "subPath" not in mount, mount
            # An emptyDir is a fresh writable folder for the pod's lifetime: a tmpfs of its size.
            size = volume["emptyDir"].get("sizeLimit")
            options = "rw,exec,nosuid,nodev,mode=1777" + (f",size={memory(size)}" if size else "")
            flags += ["--tmpfs", f"{mount['mountPath']}:{options}"]
        assert self.pod_spec.get("automountServiceAccountToken", True), "the operator needs its token"
        flags += ["--volume", f"{self.service_account_dir}:{SERVICE_ACCOUNT_DIR}:ro"]
        return flags

    def _config_map_dir(self, volume: dict[str, Any], mount: dict[str, Any]) -> Path:
        """The ConfigMap's keys as files, as the kubelet projects them (read-only, whole folder)."""
        assert set(volume) == {"name", "configMap"} and set(volume["configMap"]) == {"name"}, volume
        assert mount.get("readOnly") and "subPath" not in mount, mount
        assert self.read_config_map is not None, "a configMap volume needs read_config_map"
        folder = self.service_account_dir.parent / f"volume-{volume['name']}"
        folder.mkdir(exist_ok=True)
        for key, text in self.read_config_map(self.namespace, volume["configMap"]["name"]).items():
            (folder / key).write_text(text)
            (folder / key).chmod(0o644)
        folder.chmod(0o755)
        return folder

    def env_flags(self) -> list[str]:
        assert "envFrom" not in self.container, "envFrom is not translated"
        fields = {"metadata.name": self.name, "metadata.namespace": self.namespace}
        # What the kubelet sets for the `kubernetes` Service, enableServiceLinks or not.
        flags = [
            "--env", "KUBERNETES_SERVICE_HOST=127.0.0.1",
            "--env", f"KUBERNETES_SERVICE_PORT={self.apiserver_port}",
            "--env", f"KUBERNETES_SERVICE_PORT_HTTPS={self.apiserver_port}",
        ]  # fmt: skip
        for var in self.container.get("env", []):
            name, source = var["name"], var.get("valueFrom")
            if source is None:
                flags += ["--env", f"{name}={var.get('value', '')}"]
            elif "fieldRef" in source:
                flags += ["--env", f"{name}={fields[source['fieldRef']['fieldPath']]}"]
            else:
                ref = source["secretKeyRef"]
                self.secret_env[name] = self.read_secret(self.namespace, ref["name"])[ref["key"]]
                flags += ["--env", name]  # the value comes from podman's own environment
        return flags

    def resource_flags(self) -> list[str]:
        limit = self.container.get("resources", {}).get("limits", {}).get("memory")
        return ["--memory", memory(limit)] if limit else []

    def run_argv(self) -> list[str]:
        """`podman run` of the container, detached; the image's entrypoint, the chart's args."""
        grace = self.pod_spec.get("terminationGracePeriodSeconds", 30)
        return [
            "run", "--detach", "--name", self.name, "--runtime", RUNTIME,
            # Loopback is where the apiserver and the emulator listen.
            "--network", "host", "--pull", "never", "--stop-timeout", str(grace),
            *ulimit_flags(), *self.security_flags(), *self.volume_flags(),
            *self.env_flags(), *self.resource_flags(),
            self.container["image"], *self.container.get("args", []),
        ]  # fmt: skip

    def start(self) -> None:
        argv = self.run_argv()  # resolves the Secret-backed variables first
        podman(*argv, env={**os.environ, **self.secret_env})

    def logs(self) -> str:
        result = subprocess.run(
            ["podman", "logs", self.name], capture_output=True, text=True, timeout=60, check=False
        )
        return result.stdout + result.stderr

    def host_pid(self) -> int:
        """The container's main process (the operator) as this machine's /proc sees it."""
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name).strip())

    def running(self) -> bool:
        return podman("inspect", "--format", "{{.State.Running}}", self.name).strip() == "true"

    def stop(self) -> int:
        """SIGTERM, SIGKILL after the pod's grace period (as the kubelet does); the exit code."""
        grace = int(self.pod_spec.get("terminationGracePeriodSeconds", 30))
        podman("stop", "--time", str(grace), self.name, timeout=grace + 60)
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).strip())

    def remove(self) -> None:
        subprocess.run(
            ["podman", "rm", "--force", "--time", "0", self.name],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def write_service_account(directory: Path, token: str, ca_file: Path, namespace: str) -> Path:
    """The files Kubernetes mounts at SERVICE_ACCOUNT_DIR, readable by the container's user."""
    directory.mkdir(mode=0o755, parents=True)
    directory.chmod(0o755)
    for name, content in {"token": token, "ca.crt": ca_file.read_text(), "namespace": namespace}.items():
        path = directory / name
        path.write_text(content)
        path.chmod(0o644)
    return directory
