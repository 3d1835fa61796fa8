"""Fault suite: operator, apiserver and emulator failures end with zero lost runs and zero duplicates.

The fixtures (real emulator and operator processes) are ``bench.fixtures``', shared with the benchmarks.
"""

from bench.fixtures import *  # noqa: F403
