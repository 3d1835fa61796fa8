"""The admin kubeconfig embeds the generated credentials."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import yaml

from emrops.controlplane import certs
from emrops.controlplane.kubeconfig import write_admin_kubeconfig


def test_kubeconfig_embeds_ca_and_client_credentials(tmp_path: Path) -> None:
    files = certs.generate(tmp_path / "certs")
    path = tmp_path / "kubeconfig"

    write_admin_kubeconfig(path, "https://127.0.0.1:6443", files)

    config = yaml.safe_load(path.read_text())
    context = config["contexts"][0]
    assert config["current-context"] == context["name"]
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["context"]["user"])
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == files.serving_ca.read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == files.admin_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == files.admin_key.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
