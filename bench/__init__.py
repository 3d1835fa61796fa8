"""emrops benchmarks: ``bench/run.py`` measures the operator against the emulator and the direct SDK.

The modules here (``harness``: processes; ``kube``: the Kubernetes client and watch recorder) are also
what the fault, security and bad-input suites under ``tests/integration/`` use to start real processes.
"""
