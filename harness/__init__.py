"""The test and benchmark harness: the real processes and objects every suite and the bench drive.

One package, used alike by ``tests/`` and ``bench/`` (tests never import ``bench``):

- ``harness.env``: the one scrubbed environment every child process gets (no Alibaba Cloud
  credentials, profiles or metadata service, no ``EMROPS_*`` setting the caller did not pass);
- ``harness.processes``: starting and stopping children (they die with their parent), polling;
- ``harness.emulator``: ``emrops emulator`` as a process, with its ``/_emulator/`` inspection API;
- ``harness.operator``: ``emrops run`` as a process;
- ``harness.kube``: the Kubernetes API, synchronously through kubectl and asynchronously over httpx;
- ``harness.objects``: the demo cluster's names and the ServiceAction builder (and its wrappers);
- ``harness.status``: reading ServiceActions (phases, conditions, summaries);
- ``harness.calls``: reading the emulator's calls log.
"""
