"""The controller unit tests' shared fixture: an in-memory store holding the demo credentials."""

from __future__ import annotations

import pytest
from controller_fakes import FakeStore, new_store


@pytest.fixture
def store() -> FakeStore:
    return new_store()
