"""OCI image archives written directly, for images with no registry to come from.

The e2e node has no registry: every image is imported into containerd from an archive
(``ctr images import``). The pod sandbox image is one static binary, so it is written here as
an OCI image layout in a tar file (one uncompressed layer, a config, a manifest, an index)
rather than built with a container tool.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def single_binary_image(binary: Path, name: str, archive: Path) -> Path:
    """Write ``archive``: an image named ``name`` holding ``binary`` as ``/<its name>``, its entrypoint.

    The archive is rewritten only when the binary is newer, so repeated runs reuse it.
    """
    if archive.exists() and archive.stat().st_mtime >= binary.stat().st_mtime:
        return archive
    layer = _tar({f"{binary.name}": (binary.read_bytes(), 0o755)})
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": [f"/{binary.name}"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": _descriptor(CONFIG, config),
            "layers": [_descriptor(LAYER, layer)],
        }
    )
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **_descriptor(MANIFEST, manifest),
                # ctr import names the image after this annotation.
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    files = {
        "oci-layout": (_json({"imageLayoutVersion": "1.0.0"}), 0o644),
        "index.json": (_json(index), 0o644),
        **{f"blobs/sha256/{_digest(blob)[7:]}": (blob, 0o644) for blob in (layer, config, manifest)},
    }
    temporary = archive.with_suffix(".tmp")
    temporary.write_bytes(_tar(files))
    temporary.replace(archive)
    return archive


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A reproducible tar (fixed times and owners) of the given (content, mode) by path."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (content, mode) in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _digest(blob: bytes) -> str:
    return f"sha256:{hashlib.sha256(blob).hexdigest()}"


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(blob), "size": len(blob)}
