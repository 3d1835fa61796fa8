"""The memory allocator the operator's image uses, applied to the operator the bench starts.

deploy/Dockerfile is the one source: its ``LD_PRELOAD``, ``PYTHONMALLOC`` and ``MALLOC_CONF``
lines. Here the library is looked up where Debian installs it (``libjemalloc2``; ``make bench``
installs it when it can), so the figures are those of what ships.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
NAMES = ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF")
#: Where Debian and Ubuntu put shared libraries, per architecture.
LIBRARY_DIRS = ("/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")


def image_environment(dockerfile: str | None = None) -> dict[str, str]:
    """The allocator's variables as the Dockerfile's ENV sets them (the image's paths)."""
    text = DOCKERFILE.read_text() if dockerfile is None else dockerfile
    instructions = re.sub(r"\\\n", " ", text).splitlines()  # continuation lines joined
    found = {
        name: value
        for line in instructions
        if line.startswith("ENV ")
        for name, value in re.findall(r"([A-Z_]+)=(\S+)", line)
        if name in NAMES
    }
    missing = set(NAMES) - set(found)
    if missing:
        raise ValueError(f"deploy/Dockerfile sets no {', '.join(sorted(missing))}")
    return found


def operator_environment() -> dict[str, str]:
    """The image's allocator variables with ``LD_PRELOAD`` pointing at this machine's library."""
    env = image_environment()
    name = Path(env["LD_PRELOAD"]).name
    for directory in LIBRARY_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return {**env, "LD_PRELOAD": str(candidate)}
    raise FileNotFoundError(
        f"{name} (the allocator of the operator's image) is not installed here: "
        "apt-get install libjemalloc2, or run the bench with --allocator=python"
    )
