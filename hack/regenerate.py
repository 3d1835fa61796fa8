"""The command line every generator in hack/ shares: write its files, or with ``--check`` name the stale ones.

A generator script renders a mapping of path -> text and calls ``main`` with it. Scripts import
this module as a sibling: Python puts a script's own folder first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(
    description: str | None, render: Callable[[], Mapping[Path, str]], command: str, argv: list[str] | None
) -> int:
    """Write what ``render`` returns; with ``--check`` write nothing and exit 1 if a file differs.

    ``description`` is the script's docstring (its first line is the ``--help`` summary) and
    ``command`` how to regenerate, for the message naming the stale files.
    """
    parser = argparse.ArgumentParser(description=(description or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    files = render()
    if not args.check:
        for path, text in files.items():
            path.write_text(text)
        return 0
    stale = [_shown(path) for path, text in files.items() if not (path.exists() and path.read_text() == text)]
    if stale:
        print(f"stale: {', '.join(stale)}; run {command}", file=sys.stderr)
        return 1
    return 0


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
