"""Shared pytest configuration.

Fixtures live in ``tests/fixtures/`` (one module per real component they start) and are loaded
here as plugins so every test directory can use them.
"""

pytest_plugins = ["fixtures.controlplane", "fixtures.emulator"]
