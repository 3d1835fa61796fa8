"""``NodeCluster``: a real one-node Kubernetes cluster on this machine, for the e2e tests.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) plus a node:
containerd 2 with Debian's runc, the kubelet, kube-proxy (nftables mode) and the bridge CNI
plugin. The binaries come from ``hack/node.sh`` (built once, cached). Everything runs as root,
because a kubelet must.

Addresses never leave the machine: the node's address is a /32 on ``lo``, pods get addresses on a
bridge of their own with a route only to the cluster's /16 (no default route), Services live in
the same /16, and an nftables table of ours drops anything of that /16 that would be forwarded
or sent out through another interface. Nothing masquerades.

Like ``emrops.controlplane.ControlPlane``: a context manager, daemons in their own session (a
Ctrl-C or a killed pytest's process group does not reach them), logs in the work folder, and
``stop()`` on every exit path (``with``, atexit, SIGTERM/SIGINT; the kernel kills the daemons if
pytest is SIGKILLed, and the next start undoes the rest from the recorded host state).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from hoststate import HostState

from emrops.controlplane import certs, processes
from emrops.controlplane.kubeconfig import write_admin_kubeconfig
from emrops.controlplane.launcher import _free_ports

ROOT = Path(__file__).resolve().parents[2]
NODE_SCRIPT = ROOT / "hack" / "node.sh"
CACHE = Path(os.environ.get("EMROPS_CACHE_DIR") or Path.home() / ".cache" / "emrops")
#: The recorded host state of the running (or killed) cluster; its presence means "undo me".
STATE_FILE = CACHE / "e2e-host-state.json"
LOCK_FILE = CACHE / "e2e.lock"

NODE_NAME = "emrops-e2e"
BRIDGE = "emrops0"
#: One /16 for everything: the node (.0.1 on lo), pods (.1.0/24), Services (.2.0/24).
NETWORK = ipaddress.ip_network("10.213.0.0/16")
NODE_IP = "10.213.0.1"
POD_CIDR = "10.213.1.0/24"
SERVICE_CIDR = "10.213.2.0/24"
KUBERNETES_SERVICE_IP = "10.213.2.1"
API_PORT = 6443
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"  # the name containerd's CRI asks for by default


class ClusterError(RuntimeError):
    """The cluster did not start, or was used before it started."""


def build_assets() -> tuple[Path, Path]:
    """Run ``hack/node.sh`` (builds what is missing); returns (control-plane folder, node folder)."""
    result = subprocess.run([str(NODE_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"hack/node.sh failed (exit {result.returncode}); see its output above")
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return Path(lines["KUBEBUILDER_ASSETS"]), Path(lines["EMROPS_NODE_ASSETS"])


class NodeCluster:
    """A one-node cluster; use as ``with NodeCluster(cp_bin, node_bin) as cluster:``.

    **Parameters:**

    * **control_plane_bin** - folder with etcd, kube-apiserver, kubectl.
    * **node_bin** - folder with the node's binaries (``hack/node.sh``'s ``EMROPS_NODE_ASSETS``).
    * **start_timeout** - seconds for each component to become ready.
    """

    def __init__(self, control_plane_bin: Path, node_bin: Path, *, start_timeout: float = 120.0) -> None:
        self.cp_bin = control_plane_bin
        self.node_bin = node_bin
        self.start_timeout = start_timeout
        self._work: Path | None = None
        self._lock: IO[str] | None = None
        self._host: HostState | None = None
        self._certs: certs.CertFiles | None = None
        self._processes: list[processes.ManagedProcess] = []
        #: Seconds from nothing to a Ready node (set by start()).
        self.startup_seconds: float | None = None
        #: What stop() could not undo, and what still differed from the recorded host state.
        self.cleanup_problems: list[str] = []

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> NodeCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if os.geteuid() != 0:
            raise ClusterError("the e2e node needs root (a kubelet manages cgroups, mounts and networks)")
        if self._work is not None:
            raise ClusterError("this NodeCluster was already started")
        CACHE.mkdir(parents=True, exist_ok=True)
        self._lock = LOCK_FILE.open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ClusterError(f"another e2e cluster runs on this machine (it holds {LOCK_FILE})") from None
        undo_killed_run()
        began = time.monotonic()
        self._work = Path(tempfile.mkdtemp(prefix="emrops-node-"))
        # Recorded, on disk too, before the first change: whatever happens next can be undone.
        self._host = HostState.capture()
        STATE_FILE.write_text(json.dumps({"work": str(self._work), "node_bin": str(self.node_bin)}))
        self._host.save(self._work.with_suffix(".host.json"))
        processes.register_cleanup(id(self), self.stop)
        with stopped_on_failure(self.stop):
            self._start(self._work)
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop everything and undo every change to the host. Idempotent."""
        for process in reversed(self._processes):
            # containerd last: the kubelet talks to it until it stops.
            process.stop(10.0)
        self._processes = []
        if self._host is not None and self._work is not None:
            problems = self._host.restore(
                work=self._work, bridge=BRIDGE, node_ip=NODE_IP, binaries=self.node_bin
            )
            problems += self._host.diff(HostState.capture(self._work))
            self.cleanup_problems = problems
            if not problems:
                self._remove_work()
            self._host = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        processes.unregister_cleanup(id(self))

    def _remove_work(self) -> None:
        work = self._require(self._work)
        with contextlib.suppress(FileNotFoundError):
            # Logs of a run are kept next to it only when something went wrong (see problems).
            shutil.rmtree(work)
            work.with_suffix(".host.json").unlink()
        STATE_FILE.unlink(missing_ok=True)

    def _start(self, work: Path) -> None:
        _run("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
        self._guard_network()
        self._certs = certs.generate(
            work / "certs",
            hosts=(NODE_IP, KUBERNETES_SERVICE_IP, "127.0.0.1", "localhost", "kubernetes.default.svc"),
        )
        write_admin_kubeconfig(work / "kubeconfig", self.server, self._certs)
        self._start_control_plane(work)
        self._start_containerd(work)
        self._start_node(work)

    # --- the pieces --------------------------------------------------------------------------

    def _guard_network(self) -> None:
        """An nftables table of our own: the cluster's /16 never goes out of another interface."""
        net, bridge = str(NETWORK), BRIDGE
        rules = f"""
table inet emrops_e2e {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname "{bridge}" oifname != "{bridge}" drop
    ip daddr {net} oifname != {{ "lo", "{bridge}" }} drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    ip daddr {net} oifname != {{ "lo", "{bridge}" }} drop
  }}
  chain postrouting {{
    type filter hook postrouting priority 200; policy accept;
    ip saddr {net} oifname != {{ "lo", "{bridge}" }} drop
  }}
}}
"""
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True)

    def _start_control_plane(self, work: Path) -> None:
        c = self._require(self._certs)
        client, peer = _free_ports(2)
        etcd_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(self.cp_bin / "etcd"),
                f"--data-dir={work / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",  # throwaway data
            ],
            ready=lambda: _http_ok(f"{etcd_url}/health"),
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.cp_bin / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={NODE_IP}",
                f"--advertise-address={NODE_IP}",
                f"--secure-port={API_PORT}",
                f"--cert-dir={work / 'certs'}",
                f"--tls-cert-file={c.serving_cert}",
                f"--tls-private-key-file={c.serving_key}",
                f"--client-ca-file={c.client_ca}",
                f"--kubelet-client-certificate={c.admin_cert}",
                f"--kubelet-client-key={c.admin_key}",
                # The node's name resolves nowhere (no DNS for it): logs and exec go to its address.
                "--kubelet-preferred-address-types=InternalIP",
                "--authorization-mode=Node,RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={c.service_account_pub}",
                f"--service-account-signing-key-file={c.service_account_key}",
            ],
            ready=lambda: self.api_get("/api/v1/namespaces/default")[0] == 200,
        )
        kubeconfig = str(work / "kubeconfig")
        self._spawn(
            "kube-controller-manager",
            [
                str(self.node_bin / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=10257",
                "--leader-elect=false",
                f"--service-account-private-key-file={c.service_account_key}",
                f"--root-ca-file={c.serving_ca}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Every controller but those for clouds, node IPAM (the CNI config holds the pod range)
                # and the bootstrap-token ones.
                "--controllers=*,-nodeipam,-bootstrapsigner,-tokencleaner",
            ],
            ready=lambda: self.api_get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.node_bin / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=10259",
                "--leader-elect=false",
            ],
            ready=lambda: _https_ok("https://127.0.0.1:10259/readyz"),
        )

    def _start_containerd(self, work: Path) -> None:
        root = work / "containerd"
        (work / "cni" / "net.d").mkdir(parents=True)
        config = root / "config.toml"
        root.mkdir()
        config.write_text(_containerd_config(root, work / "cni"))
        self._spawn(
            "containerd",
            [str(self.node_bin / "containerd"), f"--config={config}"],
            ready=lambda: self.ctr("version", check=False).returncode == 0,
        )
        from oci_images import single_binary_image

        archive = single_binary_image(self.node_bin / "pause", PAUSE_IMAGE, self.node_bin / "pause.oci.tar")
        self.import_image(archive, PAUSE_IMAGE)
        (work / "cni" / "net.d" / "10-emrops.conflist").write_text(json.dumps(_cni_config(work / "cni")))

    def _start_node(self, work: Path) -> None:
        c = self._require(self._certs)
        kubeconfig = str(work / "kubeconfig")
        endpoint = f"unix://{work / 'containerd' / 'containerd.sock'}"
        kubelet_config = work / "kubelet.yaml"
        kubelet_config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "address": NODE_IP,
                    "port": 10250,
                    "readOnlyPort": 0,
                    "healthzBindAddress": "127.0.0.1",
                    "healthzPort": 10248,
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(c.client_ca)},
                    },
                    "authorization": {"mode": "Webhook"},
                    # This machine has cgroup v1 only, which 1.36 refuses unless told otherwise.
                    "failCgroupV1": False,
                    "cgroupDriver": "cgroupfs",
                    "containerRuntimeEndpoint": endpoint,
                    "imageServiceEndpoint": endpoint,
                    "podLogsDir": str(work / "pod-logs"),
                    "volumePluginDir": str(work / "volume-plugins"),
                    "failSwapOn": False,
                    "maxPods": 30,
                    "registerNode": True,
                    "resolvConf": "/etc/resolv.conf",
                    "imageGCHighThresholdPercent": 100,
                    "evictionHard": {
                        "memory.available": "50Mi",
                        "nodefs.available": "1%",
                        "imagefs.available": "1%",
                    },
                    "serializeImagePulls": False,
                    "syncFrequency": "10s",
                    "fileCheckFrequency": "10s",
                    "nodeStatusReportFrequency": "10s",
                    "shutdownGracePeriod": "0s",
                }
            )
        )
        self._spawn(
            "kubelet",
            [
                str(self.node_bin / "kubelet"),
                f"--config={kubelet_config}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={work / 'kubelet'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
            ],
            ready=lambda: self._node_ready(),
        )
        proxy_config = work / "kube-proxy.yaml"
        proxy_config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "mode": "nftables",
                    "clientConnection": {"kubeconfig": kubeconfig},
                    "hostnameOverride": NODE_NAME,
                    "clusterCIDR": POD_CIDR,
                    "nodePortAddresses": [f"{NODE_IP}/32"],
                    "healthzBindAddress": "127.0.0.1:10256",
                    "metricsBindAddress": "127.0.0.1:10249",
                    # 0: leave the host's conntrack settings as they are.
                    "conntrack": {
                        "maxPerCore": 0,
                        "min": 0,
                        "tcpEstablishedTimeout": "0s",
                        "tcpCloseWaitTimeout": "0s",
                    },
                }
            )
        )
        self._spawn(
            "kube-proxy",
            [str(self.node_bin / "kube-proxy"), f"--config={proxy_config}"],
            ready=lambda: _http_ok("http://127.0.0.1:10256/healthz"),
        )

    def _node_ready(self) -> bool:
        status, body = self.api_get(f"/api/v1/nodes/{NODE_NAME}")
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _spawn(self, name: str, argv: list[str], *, ready: Callable[[], bool]) -> None:
        work = self._require(self._work)
        process = processes.ManagedProcess(name, argv, work / f"{name}.log")
        process.start()
        self._processes.append(process)
        deadline = time.monotonic() + self.start_timeout
        delay = 0.05
        while not ready():
            if not process.running():
                raise ClusterError(
                    f"{name} exited with status {process.returncode} while starting; "
                    f"last lines of its log:\n{process.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{name} not ready after {self.start_timeout:.0f}s; "
                    f"last lines of its log:\n{process.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # --- what the tests use --------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        return self._require(self._work)

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    @property
    def kubeconfig(self) -> str:
        return str(self.work_dir / "kubeconfig")

    @property
    def ca_file(self) -> Path:
        return self._require(self._certs).serving_ca

    def env(self) -> dict[str, str]:
        """This process's environment with KUBECONFIG set to the admin kubeconfig."""
        return {**os.environ, "KUBECONFIG": self.kubeconfig}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        command = [str(self.cp_bin / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """ctr in containerd's k8s.io namespace (the CRI's), with an absolute socket path."""
        address = self.work_dir / "containerd" / "containerd.sock"
        command = [str(self.node_bin / "ctr"), f"--address={address}", "--namespace=k8s.io", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        if check and result.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def import_image(self, archive: Path, name: str) -> None:
        """Import an OCI archive into the CRI's image store (pods use it with pullPolicy Never).

        ctr names the image after the archive's annotations; ``name`` is checked to be among them.
        """
        self.ctr("images", "import", str(archive))
        names = self.ctr("images", "list", "--quiet").stdout.split()
        if name not in names:
            raise ClusterError(f"{archive} did not bring the image {name} (it brought: {names})")

    def api_get(self, path: str, token: str | None = None) -> tuple[int, str]:
        """GET on the apiserver, as admin (client certificate) or with a bearer ``token``."""
        c = self._require(self._certs)
        context = ssl.create_default_context(cafile=str(c.serving_ca))
        headers = {}
        if token is None:
            context.load_cert_chain(str(c.admin_cert), str(c.admin_key))
        else:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(f"{self.server}{path}", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            return 0, str(exc)

    def log(self, name: str) -> str:
        path = self.work_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def _require(value: Any) -> Any:
        if value is None:
            raise ClusterError("the cluster is not running: use `with NodeCluster(...) as cluster:`")
        return value


@contextlib.contextmanager
def stopped_on_failure(stop: Callable[[], None]) -> Iterator[None]:
    """Run ``stop`` when the block raises anything (Ctrl-C too), then let the exception through."""
    try:
        yield
    except BaseException:
        stop()
        raise


def undo_killed_run() -> None:
    """Undo what a run killed before its cleanup (SIGKILL) left on the host, from its record."""
    if not STATE_FILE.exists():
        return
    record = json.loads(STATE_FILE.read_text())
    work = Path(record["work"])
    host_file = work.with_suffix(".host.json")
    if host_file.exists():
        problems = HostState.load(host_file).restore(
            work=work, bridge=BRIDGE, node_ip=NODE_IP, binaries=Path(record["node_bin"])
        )
        if problems:
            raise ClusterError(f"could not undo the killed run of {work}: {problems}")
        host_file.unlink()
    shutil.rmtree(work, ignore_errors=True)
    STATE_FILE.unlink()


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


def _https_ok(url: str) -> bool:
    """An unauthenticated health endpoint served with a self-signed certificate (local only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


def _containerd_config(root: Path, cni: Path) -> str:
    state = root / "state"
    return f"""version = 3
root = '{root / "root"}'
state = '{state}'
# Plugins that would write outside our folders (/opt/containerd, /var/run/nri) or need what
# this machine does not have.
disabled_plugins = ['io.containerd.internal.v1.opt', 'io.containerd.nri.v1.nri',
  'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']

[grpc]
  address = '{root / "containerd.sock"}'
[ttrpc]
  address = '{root / "containerd.sock.ttrpc"}'
[debug]
  address = ''
[metrics]
  address = ''

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{PAUSE_IMAGE}'

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: without this runc fails with "can't get final child's PID".
  restrict_oom_score_adj = true
  # Pods' network namespaces are pinned under our state folder, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        Root = '{state / "runc"}'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '{cni / "net.d"}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
"""


def _cni_config(cni: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "emrops-e2e",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No masquerading: pod addresses must never leave the machine, translated or not.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(cni / "ipam"),
                    "ranges": [[{"subnet": POD_CIDR}]],
                    # Only the cluster's own /16 is routed (node, Services, pods): no default route.
                    "routes": [{"dst": str(NETWORK)}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
