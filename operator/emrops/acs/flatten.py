"""RPC parameter flattening, as the official SDKs put nested requests on the query string.

``{"A": {"B": [{"C": 1}]}}`` becomes ``{"A.B.1.C": "1"}``: dict keys join with ``.``, list
elements are numbered from 1, scalars are rendered with the Python SDK's ``str()`` (so booleans
are ``True``/``False``), None is skipped and an empty list produces nothing. ``unflatten`` is the
inverse the emulator uses to read a request back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_scalar(value: Any) -> str:
    """The Python SDK's rendering: ``str(v)``; enums by value."""
    raw = getattr(value, "value", value)
    return str(raw)


def flatten(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten a nested request dict into RPC query parameters."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list | tuple):
            for index, sub in enumerate(value, start=1):
                walk(f"{prefix}.{index}", sub)
        else:
            out[prefix] = render_scalar(value)

    walk("", params)
    return out


class UnflattenError(ValueError):
    """The flat keys do not describe one consistent nested object (e.g. ``A=1`` and ``A.B=2``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"parameter {key!r}: {problem}")


def unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild the nested object from flat keys; numeric segments become 1-based list positions.

    Lists are returned in index order; gaps are closed (``X.1``, ``X.3`` gives two elements), which
    is how the service treats them. Raises ``UnflattenError`` naming the key on a shape conflict.
    """
    root: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        if any(part == "" for part in parts):
            raise UnflattenError(key, "empty name segment")
        node: dict[str, Any] = root
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if last:
                if isinstance(node.get(part), dict):
                    raise UnflattenError(key, "given both as a value and as an object")
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise UnflattenError(key, "given both as a value and as an object")
                node = child
    rebuilt: dict[str, Any] = _lists(root)
    return rebuilt


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isascii() and key.isdigit() and int(key) >= 1 for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
