"""What Kubernetes sees: the ServiceAction spec and status models and the kstatus conditions.

Pure data and pure functions (pydantic, no I/O). May import ``emrops.emr.models`` (to build the
API request from the spec) and ``emrops.acs``; never kopf, kubernetes_asyncio or the controller.
"""
