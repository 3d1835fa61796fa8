"""The node itself: a pod runs from an imported image, and the cluster's addresses stay local."""

from __future__ import annotations

import json
import subprocess

import pytest
from helm_release import wait_for
from node_cluster import NETWORK, NODE_NAME, PAUSE_IMAGE, POD_CIDR, NodeCluster

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
    assert ip in NETWORK
    # The pod's network namespace answers on the bridge (the kernel, not the pause process).
    ping = subprocess.run(["ping", "-c1", "-W2", ip], capture_output=True, text=True, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # Inside the pod: a route to the cluster's /16 only, so nothing else is reachable.
    container = got["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    pid = cluster.ctr("tasks", "list").stdout.split(container, 1)[1].split()[0]
    in_pod = ["nsenter", f"--net=/proc/{pid}/ns/net"]
    routes = subprocess.run([*in_pod, "ip", "-j", "route"], capture_output=True, text=True, check=True).stdout
    assert {r["dst"] for r in json.loads(routes)} == {str(NETWORK), POD_CIDR}
    off_machine = subprocess.run([*in_pod, "ping", "-c1", "-W1", "192.0.2.1"], capture_output=True, text=True)
    assert "unreachable" in off_machine.stderr.lower() + off_machine.stdout.lower()
    cluster.kubectl("delete", "pod", "pause", "-n", "e2e-node", "--timeout=60s")
    wait_for(
        "the pod's container to stop",
        lambda: container not in cluster.ctr("tasks", "list").stdout,
        timeout=30,
    )


def test_the_clusters_addresses_never_leave_through_another_interface(cluster: NodeCluster) -> None:
    """An address of the cluster's /16 nobody holds would follow the default route: it is dropped."""
    unheld = str(NETWORK.network_address + 200 * 256 + 1)
    ping = subprocess.run(["ping", "-c1", "-W1", unheld], capture_output=True, text=True, check=False)
    assert ping.returncode != 0
    assert "not permitted" in ping.stderr.lower(), ping.stderr  # refused by our table, not lost on the wire
