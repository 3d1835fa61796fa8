"""Admin kubeconfig for the local control plane, with the certificates embedded."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from emrops.controlplane.certs import CertFiles

CONTEXT = "emrops-local"


def write_admin_kubeconfig(path: Path, server: str, certs: CertFiles) -> None:
    """Write a kubeconfig for ``server`` that authenticates as admin (group system:masters).

    The certificates are embedded rather than referenced, so the file keeps working when copied
    elsewhere (for example into an operator subprocess's environment) for as long as the server runs.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": _b64(certs.serving_ca)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": _b64(certs.admin_cert),
                    "client-key-data": _b64(certs.admin_key),
                },
            }
        ],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin", "namespace": "default"}}
        ],
        "current-context": CONTEXT,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")
