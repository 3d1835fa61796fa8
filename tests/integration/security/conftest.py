"""Security suite: secrets never leak, Secrets stay in their namespace, replay and TLS are refused.

The fixtures (real emulator and operator processes) are ``bench.fixtures``', shared with the benchmarks.
"""

from bench.fixtures import *  # noqa: F403
