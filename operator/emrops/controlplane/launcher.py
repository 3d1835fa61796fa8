"""``ControlPlane``: etcd + kube-apiserver on free loopback ports, for tests and the demo."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from emrops.controlplane import certs, processes
from emrops.controlplane.assets import find_assets, find_kubectl
from emrops.controlplane.kubeconfig import write_admin_kubeconfig

_T = TypeVar("_T")
_Check = Callable[[], bool]


class ControlPlaneError(RuntimeError):
    """The local control plane did not start, or was used before it started."""


class KubectlError(subprocess.CalledProcessError):
    """A ``kubectl`` command run by ``ControlPlane.kubectl`` exited non-zero."""

    def __str__(self) -> str:
        command = " ".join(str(arg) for arg in self.cmd[3:])  # without the binary and our two flags
        return f"kubectl {command} failed (exit {self.returncode}): {(self.stderr or '').strip()}"


class ControlPlane:
    """A real kube-apiserver backed by its own etcd, both on free loopback ports.

    Use it as a context manager; everything lives in a temporary folder that ``stop()`` removes::

        with ControlPlane() as cp:
            cp.install_crds("crds/")
            cp.kubectl("get", "svcact", "-A")
            client_env = cp.env()  # KUBECONFIG set, for operator subprocesses

    **Parameters:**

    * **assets** - folder with ``etcd``, ``kube-apiserver`` (and ``kubectl``); default: see
      ``emrops.controlplane.assets.find_assets``.
    * **start_timeout** - seconds to wait for ``/readyz`` and the ``default`` namespace.
    * **stop_grace** - seconds between SIGTERM and SIGKILL for each process.
    * **apiserver_flags** - extra ``kube-apiserver`` flags (appended, so they win).

    The admin kubeconfig authenticates with a client certificate in group ``system:masters``.
    Processes are stopped even if the ``with`` block is left by an exception, at interpreter exit,
    on SIGTERM/SIGINT, and (Linux) by the kernel if this process is killed.
    """

    def __init__(
        self,
        assets: Path | str | None = None,
        *,
        start_timeout: float = 60.0,
        stop_grace: float = 10.0,
        apiserver_flags: Sequence[str] = (),
    ) -> None:
        self._assets = Path(assets) if assets is not None else None
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.apiserver_flags = list(apiserver_flags)
        self._work_dir: Path | None = None
        self._server: str | None = None
        self._etcd_url: str | None = None
        self._certs: certs.CertFiles | None = None
        self._kubectl: Path | None = None
        self._etcd: processes.ManagedProcess | None = None
        self._apiserver: processes.ManagedProcess | None = None
        #: Seconds from starting etcd until the apiserver served the ``default`` namespace.
        self.startup_seconds: float | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd and kube-apiserver and wait until the API serves; raise ControlPlaneError if not."""
        if self._work_dir is not None:
            raise ControlPlaneError("this ControlPlane was already started")
        assets = self._assets or find_assets()
        self._assets = assets
        self._kubectl = find_kubectl(assets)
        self._work_dir = Path(tempfile.mkdtemp(prefix="emrops-cp-"))
        # Registered before any child exists, so an interruption during start-up cleans up too.
        processes.register_cleanup(id(self), self.stop)
        try:
            self._start(assets, self._work_dir)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, and remove the temporary folder. Idempotent."""
        # apiserver first: etcd going away under it would only produce noise and a slow exit.
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop(self.stop_grace)
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        processes.unregister_cleanup(id(self))

    def _start(self, assets: Path, work: Path) -> None:
        began = time.monotonic()
        self._certs = certs.generate(work / "certs")
        etcd_client, etcd_peer, api_port = _free_ports(3)
        self._etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._server = f"https://127.0.0.1:{api_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer}"

        self._etcd = processes.ManagedProcess(
            "etcd",
            [
                str(assets / "etcd"),
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls={self._etcd_url}",
                f"--advertise-client-urls={self._etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                # Throwaway data: fsync would only make every write (and the tests) slower.
                "--unsafe-no-fsync=true",
            ],
            work / "etcd.log",
        )
        self._etcd.start()
        self._wait_for(self._etcd, self._etcd_healthy, began, "etcd /health")

        self._apiserver = processes.ManagedProcess(
            "kube-apiserver", self._apiserver_argv(assets, work, api_port), work / "kube-apiserver.log"
        )
        self._apiserver.start()
        self._wait_for(
            self._apiserver, lambda: self._get("/readyz")[0] == 200, began, "kube-apiserver /readyz"
        )
        # /readyz can answer before the bootstrap controller has created the namespace.
        self._wait_for(
            self._apiserver,
            lambda: self._get("/api/v1/namespaces/default")[0] == 200,
            began,
            "namespace default",
        )
        write_admin_kubeconfig(work / "kubeconfig", self._server, self._certs)
        self.startup_seconds = time.monotonic() - began

    def _apiserver_argv(self, assets: Path, work: Path, port: int) -> list[str]:
        c = self._require(self._certs)
        return [
            str(assets / "kube-apiserver"),
            f"--etcd-servers={self._etcd_url}",
            "--bind-address=127.0.0.1",
            # Without it the apiserver looks for a default route, and some machines have none.
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={work / 'certs'}",
            f"--tls-cert-file={c.serving_cert}",
            f"--tls-private-key-file={c.serving_key}",
            f"--client-ca-file={c.client_ca}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # No controller-manager creates ServiceAccounts, so this plug-in would reject every pod.
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={c.service_account_pub}",
            f"--service-account-signing-key-file={c.service_account_key}",
            *self.apiserver_flags,
        ]

    def _wait_for(self, process: processes.ManagedProcess, ready: _Check, began: float, what: str) -> None:
        deadline = began + self.start_timeout
        delay = 0.05
        while True:
            if not process.running():
                raise ControlPlaneError(
                    f"{process.name} exited with status {process.returncode} while waiting for {what}; "
                    f"last lines of {process.log_path.name}:\n{process.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out after {self.start_timeout:.0f}s waiting for {what}; "
                    f"last lines of {process.log_path.name}:\n{process.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._etcd_url}/health", timeout=2) as response:  # noqa: S310
                return bool(json.load(response).get("health") == "true")
        except (OSError, ValueError, http.client.HTTPException):
            return False

    def _get(self, path: str) -> tuple[int, str]:
        """GET on the apiserver as admin; (0, reason) when it does not answer."""
        c = self._require(self._certs)
        context = ssl.create_default_context(cafile=str(c.serving_ca))
        context.load_cert_chain(str(c.admin_cert), str(c.admin_key))
        try:
            with urllib.request.urlopen(f"{self.server}{path}", context=context, timeout=5) as response:  # noqa: S310
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc)

    # --- what users of a running control plane need ----------------------------------------

    @property
    def assets(self) -> Path:
        """Folder of the binaries in use."""
        return self._require(self._assets)

    @property
    def work_dir(self) -> Path:
        """Temporary folder with certificates, etcd data and the processes' logs."""
        return self._require(self._work_dir)

    @property
    def server(self) -> str:
        """The apiserver's URL, e.g. ``https://127.0.0.1:41234``."""
        return self._require(self._server)

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the running children, by name (``etcd``, ``kube-apiserver``)."""
        running = [p for p in (self._etcd, self._apiserver) if p is not None and p.running()]
        return {p.name: p.pid for p in running if p.pid is not None}

    @property
    def kubeconfig(self) -> str:
        """Path of the admin kubeconfig (a ``str``, so it can go straight into an environment)."""
        return str(self.work_dir / "kubeconfig")

    @property
    def ca_file(self) -> Path:
        """PEM of the CA that signed the apiserver's serving certificate."""
        return self._require(self._certs).serving_ca

    @property
    def admin_cert(self) -> tuple[Path, Path]:
        """(certificate, key) PEM paths of the admin client certificate."""
        c = self._require(self._certs)
        return c.admin_cert, c.admin_key

    def env(self) -> dict[str, str]:
        """This process's environment with ``KUBECONFIG`` pointing at the admin kubeconfig."""
        return {**os.environ, "KUBECONFIG": self.kubeconfig}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl as admin; raise KubectlError (with its stderr) on failure when ``check``."""
        kubectl = self._require(self._kubectl)
        command = [
            str(kubectl),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.work_dir / 'kube-cache'}",
        ]
        command += args
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, command, result.stdout, result.stderr)
        return result

    def create_namespace(self, name: str | None = None, *, prefix: str = "t-") -> str:
        """Create a namespace (a random ``<prefix><hex>`` name by default) and return its name."""
        name = name or f"{prefix}{secrets.token_hex(4)}"
        self.kubectl("create", "namespace", name)
        return name

    def install_crds(self, path: Path | str, timeout: float = 60.0) -> list[str]:
        """Apply the CRDs in ``path`` (a file or folder) and wait until each is served.

        Returns the CRD names. "Served" means Established and answering a list request, which
        is when a client may create objects of the new kind.
        """
        path = Path(path)
        files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
        crds = [doc for doc in _yaml_documents(files) if doc.get("kind") == "CustomResourceDefinition"]
        if not crds:
            raise ControlPlaneError(f"no CustomResourceDefinition found in {path}")
        for file in files:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(file))
        names = []
        deadline = time.monotonic() + timeout
        for crd in crds:
            name = crd["metadata"]["name"]
            names.append(name)
            self.kubectl("wait", "--for=condition=Established", f"crd/{name}", f"--timeout={timeout:.0f}s")
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                url = f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}?limit=1"
                while self._get(url)[0] != 200:
                    if time.monotonic() > deadline:
                        raise ControlPlaneError(f"CRD {name} not served at {url} after {timeout:.0f}s")
                    time.sleep(0.1)
        return names

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise ControlPlaneError("the control plane is not running: use `with ControlPlane() as cp:`")
        return value


def _yaml_documents(files: Iterable[Path]) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for file in files:
        documents += [doc for doc in yaml.safe_load_all(file.read_text()) if isinstance(doc, dict)]
    return documents


def _free_ports(count: int) -> list[int]:
    """Ports the kernel says are free, all held open together so they differ from each other."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
