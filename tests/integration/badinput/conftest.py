"""Bad-input suite: invalid ServiceActions are refused at apply time; the emulator survives any request.

The fixtures (real emulator and operator processes) are ``bench.fixtures``', shared with the benchmarks.
"""

from bench.fixtures import *  # noqa: F403
