"""Session fixtures of the e2e suite: one real cluster, one emulator behind TLS, the operator image.

``make e2e`` runs ``pytest -m e2e tests/e2e`` as root. Without root, or without the node's
binaries and image tools, the tests are skipped, unless ``EMROPS_REQUIRE_CONTROL_PLANE=1``
(``make e2e`` sets it), where that is an error.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helm_release import (
    CA_CONFIGMAP,
    CA_MOUNT,
    CREDENTIALS_SECRET,
    EMULATOR_CLUSTER,
    EXAMPLES_NAMESPACE,
    Release,
)
from node_cluster import NODE_IP, ROOT, ClusterError, NodeCluster, build_assets
from tlsproxy import Emulator, TlsProxy

from emrops.controlplane import certs
from fixtures.controlplane import missing, require_helm
from harness.emulator import Emulator as EmulatorProcess
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET

#: The emulator's port on the node's address (TLS), as the pod reaches it.
EMULATOR_PORT = 8443
#: Emulated durations at a fifth: a rolling restart of four DataNodes 10 s apart takes ~10 s, long
#: enough to delete a pod in the middle of it and short enough for the suite.
TIME_SCALE = 0.2
RELEASE_NAMESPACE = "emrops-system"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    if os.geteuid() != 0:
        missing("the e2e cluster needs root (a kubelet manages cgroups, mounts and networks)")
    try:
        control_plane_bin, node_bin = build_assets()
    except ClusterError as exc:
        missing(str(exc))
    cluster = NodeCluster(control_plane_bin, node_bin)
    with cluster:
        print(f"\ne2e: cluster ready in {cluster.startup_seconds:.1f}s ({cluster.work_dir})")
        yield cluster
    if cluster.cleanup_problems:
        pytest.fail(
            "the cluster left the host changed (work folder kept for its logs):\n  "
            + "\n  ".join(cluster.cleanup_problems),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory, cluster: NodeCluster) -> Iterator[Emulator]:
    workdir = tmp_path_factory.mktemp("emulator")
    handle = EmulatorProcess(workdir, time_scale=TIME_SCALE).start()
    # The control plane's certificate helper: a CA and a serving certificate for the node's address.
    tls = certs.generate(workdir / "tls", hosts=(NODE_IP,))
    host, port = handle.endpoint.rsplit(":", 1)
    proxy = TlsProxy(NODE_IP, EMULATOR_PORT, (host, int(port)), tls.serving_cert, tls.serving_key)
    proxy.start()
    try:
        yield Emulator(handle, proxy.url, tls.serving_ca)
    finally:
        proxy.stop()
        handle.close()


@pytest.fixture(scope="session")
def operator_image(cluster: NodeCluster) -> str:
    """The operator image, imported into the node: ``EMROPS_E2E_IMAGE`` / ``EMROPS_E2E_IMAGE_ARCHIVE``
    when set, else what hack/image.sh builds (or finds)."""
    began = time.monotonic()
    if os.environ.get("EMROPS_E2E_IMAGE_ARCHIVE"):
        # A prebuilt image (make e2e builds it first; CI may bring its own): name and OCI archive.
        image, archive = os.environ["EMROPS_E2E_IMAGE"], Path(os.environ["EMROPS_E2E_IMAGE_ARCHIVE"])
    else:
        script = ROOT / "hack" / "image.sh"
        if not script.exists():
            missing("hack/image.sh (the operator image build) is not in this tree")
        result = subprocess.run([str(script)], stdout=subprocess.PIPE, text=True, check=False)
        if result.returncode != 0:
            missing(f"hack/image.sh failed (exit {result.returncode})")
        lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        image, archive = lines["IMAGE"], Path(lines["IMAGE_ARCHIVE"])
    cluster.import_image(archive, name=image)
    print(f"\ne2e: image {image} built/imported in {time.monotonic() - began:.1f}s")
    return image


@pytest.fixture(scope="session")
def release(
    tmp_path_factory: pytest.TempPathFactory, cluster: NodeCluster, emulator: Emulator, operator_image: str
) -> Release:
    """The chart installed (``helm install --wait``) with the operator pointed at the emulator."""
    workdir = tmp_path_factory.mktemp("helm")
    cluster.kubectl("create", "namespace", RELEASE_NAMESPACE)
    cluster.kubectl(
        "create", "configmap", CA_CONFIGMAP, "-n", RELEASE_NAMESPACE, f"--from-file=ca.crt={emulator.ca_file}"
    )
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        CREDENTIALS_SECRET,
        "-n",
        RELEASE_NAMESPACE,
        f"--from-literal=accessKeyId={ACCESS_KEY_ID}",
        f"--from-literal=accessKeySecret={ACCESS_KEY_SECRET}",
    )
    repository, tag = operator_image.rsplit(":", 1)
    base_values = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "emr": {"endpoint": emulator.endpoint},
        # The operator's own identity, for the examples that name no Secret of their own.
        "credentials": {"existingSecret": CREDENTIALS_SECRET},
        "tenancy": {
            "operatorIdentity": [
                {"namespace": EXAMPLES_NAMESPACE, "regions": ["cn-hangzhou"], "clusters": [EMULATOR_CLUSTER]}
            ]
        },
        "polling": {"initialSeconds": 1, "maxSeconds": 2},
        # The emulator's CA, trusted by the operator's HTTPS client (httpx reads SSL_CERT_FILE).
        "extraEnv": [{"name": "SSL_CERT_FILE", "value": f"{CA_MOUNT}/ca.crt"}],
        "extraVolumes": [{"name": "emulator-ca", "configMap": {"name": CA_CONFIGMAP}}],
        "extraVolumeMounts": [{"name": "emulator-ca", "mountPath": CA_MOUNT, "readOnly": True}],
    }
    release = Release(cluster, require_helm(), workdir, RELEASE_NAMESPACE, "emrops", base_values)
    began = time.monotonic()
    release.install()
    print(f"\ne2e: helm install --wait took {time.monotonic() - began:.1f}s")
    return release
