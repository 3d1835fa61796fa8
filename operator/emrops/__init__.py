"""emrops: a Kubernetes operator for Alibaba Cloud EMR service actions.

Packages, and the direction imports may flow (checked by import-linter, see pyproject.toml):

- ``emrops.acs``: the Alibaba Cloud wire protocol (signatures, parameter flattening, the error
  code table). Pure; imports nothing of emrops.
- ``emrops.emr``: the async EMR OpenAPI client (aiohttp). Uses ``acs``; knows nothing of Kubernetes.
- ``emrops.emulator``: the local EMR emulator (aiohttp). Uses ``acs``; never the client.
- ``emrops.api``: the ServiceAction model and status/condition helpers (what Kubernetes sees).
- ``emrops.controller``: kopf handlers and the run state machine. Uses ``api`` and ``emr``.
- ``emrops.controlplane``: starts a real local kube-apiserver + etcd for tests and the demo.
"""

__version__ = "0.1.0"
