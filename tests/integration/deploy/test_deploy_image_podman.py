"""The operator image (`make image`) run as the chart runs its pod, against the real apiserver.

The image hack/image.sh builds from deploy/Dockerfile runs under podman with what the rendered
Deployment asks of the kubelet (podman_pod.py): uid 65532, read-only root, every capability
dropped, no privilege escalation, the chart's /tmp, its memory limit, args and environment (the
credentials Secret into variables), in-cluster mode with a real token of the chart's
ServiceAccount (TokenRequest) and only the chart's RBAC. It must become ready, answer every
probe and port the chart declares, run a ServiceAction to Succeeded against the emulator, and
stop cleanly on SIGTERM within the pod's grace period. Without podman the test is skipped
(failed under ``EMROPS_REQUIRE_CONTROL_PLANE=1``, where hack/image.sh installs podman as root).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from chart_tools import ROOT, Helm, container, documents, one
from podman_pod import PodmanPod, read_config_map, read_secret, write_service_account

from emrops.controlplane import ControlPlane
from fixtures.controlplane import missing, require_helm
from harness.emulator import Emulator
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, service_action

pytestmark = pytest.mark.integration

#: A cold build (the Debian base, then the image) takes about 10 minutes on 2 cores.
BUILD_TIMEOUT = 1800
CREDENTIALS = "emrops-default-credentials"
READY_TIMEOUT = 120


@pytest.fixture(scope="module")
def image() -> str:
    """The image `make image` builds (reused when its inputs did not change)."""
    if shutil.which("podman") is None and os.environ.get("EMROPS_REQUIRE_CONTROL_PLANE") != "1":
        missing("podman not found: run `make image` (installs podman as root with apt-get)")
    result = subprocess.run(
        [str(ROOT / "hack" / "image.sh")],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, cwd=ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        missing(f"hack/image.sh failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return printed["IMAGE"]


def _free_ports(count: int) -> list[int]:
    """Ports the kernel says are free, held open together so that they differ."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path as the kubelet's probe does; (0, reason) without an answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def _await_200(pod: PodmanPod, port: int, path: str, until: Callable[[str], bool] = bool) -> str:
    """The body of the first 200 answer of ``path`` that satisfies ``until``; fails when the
    container exits or after READY_TIMEOUT seconds."""
    deadline = time.monotonic() + READY_TIMEOUT
    while (answer := _get(port, path))[0] != 200 or not until(answer[1]):
        assert pod.running(), f"the container exited:\n{pod.logs()[-6000:]}"
        assert time.monotonic() < deadline, f"{path} on {port}: {answer}\n{pod.logs()[-6000:]}"
        time.sleep(0.5)
    return answer[1]


def _scrape_target(helm: Helm, values: dict[str, Any], namespace: str) -> tuple[str, str]:
    """(path, container port name) Prometheus scrapes, as the chart's ServiceMonitor declares
    them: its endpoint names a port of the metrics Service, which targets a container port."""
    with_monitor = {**values, "metrics": {**values["metrics"], "serviceMonitor": {"enabled": True}}}
    docs = documents(helm.template(with_monitor, namespace=namespace, skip_tests=True))
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")]
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    return str(endpoint["path"]), str(port["targetPort"])


@pytest.mark.timeout(BUILD_TIMEOUT + 300)
def test_image_runs_a_service_action_as_the_chart_runs_its_pod(
    control_plane: ControlPlane, image: str, emulator: Emulator, tmp_path: Path
) -> None:
    helm = Helm(require_helm(), tmp_path)
    release_ns = control_plane.create_namespace(prefix="emrops-image-")
    team = control_plane.create_namespace(prefix="team-image-")
    repository, _, tag = image.rpartition(":")
    # Free ports for the chart's metrics and health ports: the container shares the host's network.
    metrics_port, health_port = _free_ports(2)
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        # One namespace: the session's other tests leave ServiceActions elsewhere.
        "watchNamespaces": [team],
        "crds": {"install": False},  # the session's apiserver has them
        "credentials": {"existingSecret": CREDENTIALS},
        "emr": {"endpoint": emulator.url},
        "metrics": {"port": metrics_port},
        "health": {"port": health_port},
        # The ServiceAction below uses the operator's identity: the tenancy policy must grant it.
        "tenancy": {"operatorIdentity": [{"namespace": team, "regions": ["*"], "clusters": ["*"]}]},
    }
    rendered = helm.template(values, namespace=release_ns, skip_tests=True)
    control_plane.kubectl(
        "apply", "--server-side", "--field-manager=emrops-image-test", "-f", "-", input=rendered
    )
    control_plane.kubectl(
        "create", "secret", "generic", CREDENTIALS, "-n", release_ns,
        f"--from-literal=accessKeyId={ACCESS_KEY_ID}", f"--from-literal=accessKeySecret={ACCESS_KEY_SECRET}",
    )  # fmt: skip
    docs = documents(rendered)
    assert container(docs)["image"] == image, "the chart's values name the built image"
    account = one(docs, "ServiceAccount")["metadata"]["name"]
    token = control_plane.kubectl("create", "token", account, "-n", release_ns, "--duration=1h").stdout
    deployment = one(docs, "Deployment")
    pod = PodmanPod(
        deployment,
        name=f"{deployment['metadata']['name']}-{secrets.token_hex(4)}",
        apiserver_port=int(urlsplit(control_plane.server).port or 443),
        service_account_dir=write_service_account(
            tmp_path / "serviceaccount", token.strip(), control_plane.ca_file, release_ns
        ),
        read_secret=read_secret(control_plane.kubectl),
        read_config_map=read_config_map(control_plane.kubectl),
    )
    scrape_path, scrape_port = _scrape_target(helm, values, release_ns)
    try:
        pod.start()
        ((ready_path, ready_port),) = [
            (path, port) for probe, path, port in pod.probes() if probe == "readinessProbe"
        ]
        # One replica: it takes the Lease and leads (a standby is ready too, but serves no metrics).
        _await_200(pod, ready_port, ready_path, until=lambda body: json.loads(body).get("role") == "leader")
        probes = list(pod.probes())
        assert {probe for probe, _, _ in probes} >= {"livenessProbe", "readinessProbe"}
        for probe, path, port in probes:
            code, body = _get(port, path)
            assert code == 200, f"{probe} {path} on {port}: {code} {body}"
        # Metrics are served once the leader's runtime is open, a moment after it took the Lease.
        body = _await_200(pod, pod.port(scrape_port), scrape_path)
        assert "# TYPE" in body, f"{scrape_path}: {body[:500]}"
        # Every port the container declares is one of the above, and answers.
        assert {p["containerPort"] for p in pod.container["ports"]} == {
            *(port for _, _, port in probes),
            pod.port(scrape_port),
        }

        # No credentialsSecretRef: the operator's default credentials, from the chart's Secret.
        action = service_action("restart-from-image", description="the image as the chart runs it")
        del action["spec"]["credentialsSecretRef"]
        control_plane.kubectl("apply", "-n", team, "-f", "-", input=json.dumps(action))
        waited = control_plane.kubectl(
            "wait", "--for=condition=Ready", "svcact/restart-from-image", "-n", team,
            "--timeout=120s", check=False, timeout=180,
        )  # fmt: skip
        assert waited.returncode == 0, f"{waited.stderr}\n{pod.logs()[-6000:]}"
        status = json.loads(
            control_plane.kubectl("get", "svcact", "restart-from-image", "-n", team, "-o", "json").stdout
        )["status"]
        assert status["phase"] == "Succeeded", status
        runs = [c for c in emulator.calls() if c["action"] == "RunApplicationAction"]
        assert len(runs) == 1 and runs[0]["operation_id"] == status["operationId"]

        # The allocator the image sets up (deploy/Dockerfile): jemalloc, for every Python object.
        pid = pod.host_pid()
        assert "libjemalloc.so.2" in Path(f"/proc/{pid}/maps").read_text()
        assert b"PYTHONMALLOC=malloc" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")

        assert pod.running()
        output = pod.logs()
        for problem in ("Read-only file system", "Permission denied", "forbidden", "Traceback"):
            assert problem not in output, f"{problem!r} in the operator's log:\n{output[-6000:]}"
        # SIGTERM as the kubelet sends it: a clean exit within terminationGracePeriodSeconds.
        assert pod.stop() == 0, pod.logs()[-6000:]
    finally:
        pod.remove()
