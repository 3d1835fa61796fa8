"""Fixtures of the emulator unit tests (helpers live in ``emulator_api``)."""

from __future__ import annotations

from emulator_api import api, api_factory

__all__ = ["api", "api_factory"]
