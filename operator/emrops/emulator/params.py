"""Typed access to a request's parameters, mapping every parse problem to an EMR error.

Parameters arrive flattened (``A.B.1.C``); this rebuilds the nested object and reads scalars the
way EMR does: booleans case-insensitively (the Python SDK sends ``True``), integers from strings.
A value of the wrong shape is InvalidParameter; a required one missing or empty is MissingParameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from emrops.acs.flatten import UnflattenError, unflatten
from emrops.emulator.errors import EmulatorError

T = TypeVar("T")


class Params:
    def __init__(self, flat: Mapping[str, str]) -> None:
        self.flat = dict(flat)
        try:
            self.nested = unflatten(self.flat)
        except UnflattenError as exc:
            raise EmulatorError("InvalidParameter", exc.key) from None
        except ValueError:
            # emrops.acs.flatten takes any Unicode digit (e.g. "¹") for a list index; int() does not.
            raise EmulatorError("InvalidParameter", "parameter names") from None

    def raw(self, path: str) -> Any:
        node: Any = self.nested
        for part in path.split("."):
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isascii() and part.isdigit() and 1 <= int(part) <= len(node):
                node = node[int(part) - 1]
            else:
                return None
        return node

    def text(self, path: str, *, required: bool = False) -> str | None:
        value = self.raw(path)
        if value is None or value == "":
            if required:
                raise EmulatorError("MissingParameter", path)
            return None
        if not isinstance(value, str):
            raise EmulatorError("InvalidParameter", path)
        return value

    def required(self, path: str) -> str:
        value = self.text(path, required=True)
        assert value is not None
        return value

    def integer(self, path: str) -> int | None:
        value = self.text(path)
        if value is None:
            return None
        try:
            return int(value.strip())
        except ValueError:
            raise EmulatorError("InvalidParameter", path) from None

    def boolean(self, path: str) -> bool | None:
        value = self.text(path)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise EmulatorError("InvalidParameter", path)
        return lowered == "true"

    def strings(self, path: str) -> list[str]:
        """A list parameter (``Name.1``, ``Name.2``); empty when absent."""
        return self._list(path, str)

    def objects(self, path: str) -> list[dict[str, Any]]:
        """A list of objects (``Name.1.Field``); empty when absent."""
        return self._list(path, dict)

    def _list(self, path: str, item: type[T]) -> list[T]:
        """The list at ``path``, every element an ``item``; empty when absent."""
        value = self.raw(path)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise EmulatorError("InvalidParameter", path)
        return list(value)
