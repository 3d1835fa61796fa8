"""What the code and docs point at exists: files they cite and modules package docstrings list.

A docstring that cites a design file the repository does not hold, or lists a module that was
renamed away, sends a newcomer looking for something that is not there.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "emrops"
SCANNED = ("operator/emrops", "hack", "docs", "tests", "bench", "deploy", "examples", "crds")
SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".txt"}
SKIPPED_PARTS = {"__pycache__", "node_modules", "results"}

#: An upper-case Markdown file name (README.md and the like), which would live at the root.
ROOT_DOC = re.compile(r"\b([A-Z][A-Z_]+\.md)\b")
#: A page of docs/, named as a path from the repository root.
DOCS_PAGE = re.compile(r"\bdocs/([\w-]+\.md)\b")


def _texts() -> Iterator[tuple[Path, str]]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and not SKIPPED_PARTS & set(path.parts):
                yield path, path.read_text(encoding="utf-8", errors="replace")
    for name in ("README.md", "Makefile", "pyproject.toml"):
        yield ROOT / name, (ROOT / name).read_text(encoding="utf-8")


def test_cited_markdown_files_exist() -> None:
    missing = []
    for path, text in _texts():
        for name in ROOT_DOC.findall(text):
            if not (ROOT / name).exists() and not (path.parent / name).exists():
                missing.append(f"{path.relative_to(ROOT)}: {name}")
        for page in DOCS_PAGE.findall(text):
            if not (ROOT / "docs" / page).exists():
                missing.append(f"{path.relative_to(ROOT)}: docs/{page}")
    assert not missing, "files cited but not in the repository:\n" + "\n".join(missing)


def _packages() -> list[Path]:
    return sorted(PACKAGE.rglob("__init__.py"))


@pytest.mark.parametrize("init", _packages(), ids=lambda p: str(p.parent.relative_to(PACKAGE.parent)))
def test_modules_a_package_docstring_lists_exist(init: Path) -> None:
    """Each bullet ``- ``name``, ``other``: ...`` names modules of that package."""
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    package = ".".join(init.parent.relative_to(PACKAGE.parent).parts)
    missing = []
    for line in docstring.splitlines():
        if not line.startswith("- ``"):
            continue
        head = line.split(":", 1)[0]
        for name in re.findall(r"``([\w.]+)``", head):
            module = name if name.startswith("emrops.") else f"{package}.{name}"
            if importlib.util.find_spec(module) is None:
                missing.append(module)
    assert not missing, f"{package}'s docstring lists modules that do not exist: {missing}"
