"""Shared pytest configuration.

Fixtures live in ``tests/fixtures/`` and are loaded here as plugins so every test directory can
use them; the processes and objects they start and build are ``harness/``'s (shared with bench/).
``fixtures.suites`` holds the fault, security and bad-input suites' fixtures (a directory's own
conftest.py overrides a fixture of the same name, as the controller suite's does).
"""

pytest_plugins = ["fixtures.controlplane", "fixtures.emulator", "fixtures.suites"]
