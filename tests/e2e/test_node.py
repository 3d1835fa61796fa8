"""The node itself: a pod runs from an imported image, and the cluster's addresses stay local."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys

import pytest
from helm_release import wait_for
from node_cluster import NETWORK, NODE_NAME, PAUSE_IMAGE, POD_CIDR, NodeCluster

#: Run by the host's Python inside a pod's network namespace: accept one connection on port 8000.
_LISTEN_ONCE = """
import socket, sys
with socket.create_server((sys.argv[1], 8000)) as server:
    print("listening", flush=True)
    server.settimeout(10)
    server.accept()[0].close()
"""
#: Connect to port 80 of an address and print the error's name (errno), or "connected".
_CONNECT = """
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=3).close()
    print("connected")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc))
"""
#: Send one UDP datagram to port 80 of an address and print the error's name, or "sent".
_SEND = """
import errno, socket, sys
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1], 80))
    print("sent")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc))
"""

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(900)]


def test_a_pod_runs_from_an_imported_image_and_is_reachable_on_the_bridge(cluster: NodeCluster) -> None:
    cluster.kubectl("create", "namespace", "e2e-node")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pause", "namespace": "e2e-node"},
        "spec": {
            "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}],
            "terminationGracePeriodSeconds": 1,
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    cluster.kubectl("wait", "--for=condition=Ready", "pod/pause", "-n", "e2e-node", "--timeout=60s")
    got = cluster.kubectl_json("get", "pod", "pause", "-n", "e2e-node")
    assert got["spec"]["nodeName"] == NODE_NAME
    ip = got["status"]["podIP"]
    assert ipaddress.ip_address(ip) in NETWORK
    container = got["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    pid = cluster.ctr("tasks", "list").stdout.split(container, 1)[1].split()[0]
    in_pod = ["nsenter", f"--net=/proc/{pid}/ns/net"]
    # Reachable over the bridge: a listener in the pod's network namespace, a connection from the host.
    listener = subprocess.Popen(
        [*in_pod, sys.executable, "-c", _LISTEN_ONCE, ip], stdout=subprocess.PIPE, text=True
    )
    assert listener.stdout is not None and listener.stdout.readline().strip() == "listening"
    with socket.create_connection((ip, 8000), timeout=5):
        pass
    assert listener.wait(timeout=10) == 0
    # Inside the pod: a route to the cluster's /16 only, so nothing else is reachable.
    routes = subprocess.run([*in_pod, "ip", "-j", "route"], capture_output=True, text=True, check=True).stdout
    assert {r["dst"] for r in json.loads(routes)} == {str(NETWORK), POD_CIDR}
    off_machine = subprocess.run(
        [*in_pod, sys.executable, "-c", _CONNECT, "192.0.2.1"], capture_output=True, text=True, check=False
    )
    assert off_machine.stdout.strip() == "ENETUNREACH", off_machine.stdout + off_machine.stderr
    cluster.kubectl("delete", "pod", "pause", "-n", "e2e-node", "--timeout=60s")
    wait_for(
        "the pod's container to stop",
        lambda: container not in cluster.ctr("tasks", "list").stdout,
        timeout=30,
    )


def test_the_clusters_addresses_never_leave_through_another_interface(cluster: NodeCluster) -> None:
    """An address of the cluster's /16 nobody holds would follow the default route: it is dropped."""
    unheld = str(NETWORK.network_address + 200 * 256 + 1)
    refused = subprocess.run(
        [sys.executable, "-c", _SEND, unheld], capture_output=True, text=True, check=False
    )
    # EPERM: dropped by the cluster's nftables table on the way out (a UDP send says so at once;
    # a TCP connect would only time out), not lost on the wire.
    assert refused.stdout.strip() == "EPERM", refused.stdout + refused.stderr
