"""Where the deploy artefacts and their generators are, and how to load a generator script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "deploy" / "helm" / "emrops"


def load_hack_script(name: str) -> ModuleType:
    """Import ``hack/<name>.py`` (hack/ is not a package; as when Python runs the script, its
    folder is on ``sys.path`` so it can import its siblings, such as ``regenerate``)."""
    if str(ROOT / "hack") not in sys.path:
        sys.path.insert(0, str(ROOT / "hack"))
    path = ROOT / "hack" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hack_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
