"""Where the deploy artefacts and their generators are, and how to load a generator script."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "emrops"
HELM_VERSION = "v3.22.0"


def load_hack_script(name: str) -> ModuleType:
    """Import ``hack/<name>.py`` (hack/ is not a package)."""
    path = ROOT / "hack" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hack_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_helm() -> str | None:
    """``$HELM``, else the helm hack/control-plane.sh builds, else helm on PATH."""
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    cache = Path(os.environ.get("EMROPS_CACHE_DIR") or Path.home() / ".cache" / "emrops")
    built = cache / f"helm-{HELM_VERSION}" / "bin" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which("helm")
