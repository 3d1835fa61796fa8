"""The trace: one line per thing that happened, in order, with its virtual time.

Two runs of one seed must produce the same lines; ``digest()`` is what the determinism test
compares. Lines are plain strings so a failing seed's tail can be printed as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable


class Trace:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.lines: list[str] = []

    def add(self, actor: str, text: str) -> None:
        self.lines.append(f"{self._clock():11.6f} {actor:<8} {text}")

    def tail(self, count: int = 30) -> list[str]:
        return self.lines[-count:]

    def digest(self) -> str:
        sha = hashlib.sha256()
        for line in self.lines:
            sha.update(line.encode())
            sha.update(b"\n")
        return sha.hexdigest()
