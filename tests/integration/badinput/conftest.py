"""Bad-input suite: invalid ServiceActions are refused at apply time; the emulator survives any request.

The fixtures (real emulator and operator processes) come from ``bench.fixtures``, which the
benchmarks use too.
"""

from bench.fixtures import (
    kube,
    namespace,
    pytest_runtest_makereport,
    serviceaction_crd,
    start_emulator,
    start_operator,
    workdir,
)

__all__ = [
    "kube",
    "namespace",
    "pytest_runtest_makereport",
    "serviceaction_crd",
    "start_emulator",
    "start_operator",
    "workdir",
]
