"""What the one-node cluster changes on this machine, recorded before and put back after.

A kubelet, kube-proxy, containerd and the bridge CNI plugin change the host itself, not only their
own folders: kernel sysctls (the kubelet sets kernel.panic, kernel.panic_on_oops,
vm.overcommit_memory; the bridge plugin turns on ip_forward), nftables tables and chains
(kube-proxy's table, the kubelet's KUBE-* canary chains through iptables-nft), a bridge and veth
devices, an address on ``lo``, cgroups, mounts, files under /run and /var/log. ``HostState`` is
the part of the machine those can touch, captured before the cluster starts; ``restore`` undoes
every difference the cluster made, and ``diff`` says what would still differ (the e2e session
fails when anything does).

The snapshot is also written to a file before anything changes, so that a run killed with
SIGKILL (no atexit, no finally) is undone by the next run before it starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: sysctls the node's processes are known to write (kubelet: kernel defaults it "protects";
#: bridge CNI: forwarding), restored to the recorded values.
SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.default.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
#: The iptables-nft tables the kubelet adds KUBE-* chains to (created by it when missing).
XTABLES = tuple((family, table) for family in ("ip", "ip6") for table in ("filter", "nat", "mangle"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: The kubelet (cgroupfs driver, cgroups per QoS class) puts every pod under this cgroup.
KUBEPODS = "kubepods"
CONTAINER_LOGS = Path("/var/log/containers")  # kubelet's symlinks to the pods' logs (fixed path)
CONTAINERD_RUN = Path("/run/containerd")  # containerd's shims put their sockets here (fixed path)


@dataclass
class HostState:
    """The host as the cluster may change it; every field is JSON-friendly."""

    sysctls: dict[str, str] = field(default_factory=dict)
    lo_addresses: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    nft_tables: list[str] = field(default_factory=list)  # "family name"
    kube_chains: list[str] = field(default_factory=list)  # "family table chain"
    cgroups: list[str] = field(default_factory=list)  # hierarchies holding a kubepods cgroup
    container_logs: list[str] = field(default_factory=list)
    containerd_run: bool = False
    mounts: list[str] = field(default_factory=list)  # mount points under the work folder

    @classmethod
    def capture(cls, work: Path | None = None) -> HostState:
        return cls(
            sysctls={name: value for name in SYSCTLS if (value := read_sysctl(name)) is not None},
            lo_addresses=_lo_addresses(),
            links=sorted(_links()),
            nft_tables=sorted(_nft_tables()),
            kube_chains=sorted(_kube_chains()),
            cgroups=sorted(h.name for h in _hierarchies() if (h / KUBEPODS).is_dir()),
            container_logs=sorted(p.name for p in _listdir(CONTAINER_LOGS)),
            containerd_run=CONTAINERD_RUN.exists(),
            mounts=mounts_under(work) if work else [],
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> HostState:
        return cls(**json.loads(path.read_text()))

    def diff(self, now: HostState) -> list[str]:
        """What differs in ``now`` from this (the recorded) state, one line per difference."""
        lines = [
            f"sysctl {name}: {value} -> {now.sysctls.get(name)}"
            for name, value in self.sysctls.items()
            if now.sysctls.get(name) != value
        ]
        for what in ("lo_addresses", "links", "nft_tables", "kube_chains", "cgroups", "container_logs"):
            before, after = set(getattr(self, what)), set(getattr(now, what))
            lines += [f"{what}: added {item}" for item in sorted(after - before)]
            lines += [f"{what}: removed {item}" for item in sorted(before - after)]
        if now.containerd_run and not self.containerd_run:
            lines.append(f"{CONTAINERD_RUN} was created")
        lines += [f"mount left: {m}" for m in now.mounts]
        return lines

    def restore(self, *, work: Path | None, bridge: str, node_ip: str, binaries: Path | None) -> list[str]:
        """Undo what the cluster changed since this state was captured; returns the errors.

        Order matters: the pods' processes go first (they hold mounts and network namespaces),
        then mounts (the namespaces' pins among them: the veths go with their namespace), then
        devices, firewall tables, cgroups, addresses and sysctls.
        """
        errors: list[str] = []

        def attempt(what: str, action: object, *args: object) -> None:
            try:
                action(*args)  # type: ignore[operator]
            except Exception as exc:  # one failure must not stop the rest of the cleanup
                errors.append(f"{what}: {exc}")

        attempt("processes", kill_node_processes, self, binaries, work)
        if work is not None:
            attempt("mounts", unmount_under, work)
        if bridge not in self.links:
            attempt("bridge", _run_quiet, "ip", "link", "delete", bridge)
        attempt("veths", _delete_new_veths, set(self.links))
        attempt("nftables", self._restore_nftables)
        attempt("cgroups", self._remove_cgroups)
        if f"{node_ip}/32" not in self.lo_addresses:
            attempt("address", _run_quiet, "ip", "addr", "del", f"{node_ip}/32", "dev", "lo")
        for name, value in self.sysctls.items():
            if read_sysctl(name) != value:
                attempt(f"sysctl {name}", write_sysctl, name, value)
        attempt("container logs", self._remove_container_logs, work)
        if not self.containerd_run:
            attempt("containerd run dir", shutil.rmtree, CONTAINERD_RUN, True)
        return errors

    def _restore_nftables(self) -> None:
        for chain in sorted(set(_kube_chains()) - set(self.kube_chains)):
            family, table, name = chain.split()
            # A rule in another chain may jump to this one: flush the whole set first, then delete.
            _run_quiet("nft", "flush", "chain", family, table, name)
        for chain in sorted(set(_kube_chains()) - set(self.kube_chains)):
            family, table, name = chain.split()
            _run_quiet("nft", "delete", "chain", family, table, name)
        for table in sorted(set(_nft_tables()) - set(self.nft_tables)):
            family, name = table.split()
            _run_quiet("nft", "delete", "table", family, name)

    def _remove_cgroups(self) -> None:
        for hierarchy in _hierarchies():
            if hierarchy.name in self.cgroups or not (hierarchy / KUBEPODS).is_dir():
                continue
            # Deepest first: a cgroup can only be removed once it has no children (and no tasks).
            for directory in sorted(
                (p for p in (hierarchy / KUBEPODS).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                _rmdir_cgroup(directory)
            _rmdir_cgroup(hierarchy / KUBEPODS)

    def _remove_container_logs(self, work: Path | None) -> None:
        kept = set(self.container_logs)
        for link in _listdir(CONTAINER_LOGS):
            if link.name not in kept and link.is_symlink():
                target = os.readlink(link)
                if work is None or target.startswith(str(work)):
                    link.unlink()


# --- the pieces ---------------------------------------------------------------------------------


def read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    (Path("/proc/sys") / name.replace(".", "/")).write_text(value)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def _run_quiet(*argv: str) -> None:
    """Run a cleanup command; its failure (the thing is already gone) is not an error."""
    subprocess.run(argv, capture_output=True, check=False, timeout=30)


def _lo_addresses() -> list[str]:
    data = json.loads(_run("ip", "-j", "addr", "show", "dev", "lo"))
    return sorted(f"{a['local']}/{a['prefixlen']}" for link in data for a in link.get("addr_info", []))


def _links() -> list[str]:
    return [link["ifname"] for link in json.loads(_run("ip", "-j", "link", "show"))]


def _delete_new_veths(before: set[str]) -> None:
    for link in json.loads(_run("ip", "-j", "link", "show", "type", "veth")):
        if link["ifname"] not in before:
            _run_quiet("ip", "link", "delete", link["ifname"])


def _nft_tables() -> list[str]:
    data = json.loads(_run("nft", "-j", "list", "tables"))["nftables"]
    return [f"{item['table']['family']} {item['table']['name']}" for item in data if "table" in item]


def _kube_chains() -> list[str]:
    """KUBE-* chains in the iptables-nft tables (the kubelet's and kube-proxy's marks)."""
    chains = []
    for family, table in XTABLES:
        listing = subprocess.run(
            ["nft", "-j", "list", "table", family, table], capture_output=True, text=True, check=False
        )
        if listing.returncode != 0:
            continue  # no such table
        for item in json.loads(listing.stdout)["nftables"]:
            chain = item.get("chain")
            if chain and chain["name"].startswith("KUBE-"):
                chains.append(f"{family} {table} {chain['name']}")
    return chains


def _hierarchies() -> list[Path]:
    """cgroup v1 hierarchies (cpu, memory, ...), or the v2 root."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return [p for p in _listdir(CGROUP_ROOT) if p.is_dir() and not p.is_symlink()]


def _rmdir_cgroup(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # tasks still exiting
    path.rmdir()


def _listdir(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except OSError:
        return []


def mounts_under(work: Path) -> list[str]:
    """Mount points under ``work`` (from /proc/self/mountinfo), deepest first."""
    prefix = str(work.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(prefix) or point == prefix[:-1]:
            points.append(point)
    return sorted(set(points), key=lambda p: -p.count("/"))


def unmount_under(work: Path) -> None:
    for _ in range(3):  # a mount can hide another one below it
        points = mounts_under(work)
        if not points:
            return
        for point in points:
            _run_quiet("umount", point)
    for point in mounts_under(work):
        _run_quiet("umount", "--lazy", point)


def kill_node_processes(state: HostState, binaries: Path | None, work: Path | None) -> None:
    """SIGKILL what the node left running: the pods' processes, then containerd's shims.

    The pods' processes are found through the kubepods cgroups this run created, the shims
    (which outlive containerd by design) by their binary or by their containerd address.
    """
    pids: set[int] = set()
    for hierarchy in _hierarchies():
        if hierarchy.name in state.cgroups:
            continue
        for procs in (hierarchy / KUBEPODS).rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids |= {int(p) for p in procs.read_text().split()}
    pids |= set(_processes_of(binaries, work))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)}
        time.sleep(0.05)


def _processes_of(binaries: Path | None, work: Path | None) -> Iterable[int]:
    for proc in _listdir(Path("/proc")):
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            exe = os.readlink(proc / "exe")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (binaries is not None and exe.startswith(str(binaries) + "/")) or (
            work is not None and str(work) in cmdline
        ):
            yield int(proc.name)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
