"""The apiserver write floor: the burst's apiserver writes made by a bare async client, nothing else.

emrops cannot submit a burst faster than the apiserver takes its writes: each ServiceAction is
created (by the load generator) and then written by the operator a few times before its
``status.operationId`` is visible (``Pending``, the ``Submitting`` intent, ``Running``). This
makes the same requests with no operator, no watch and no EMR: per object, the create and then
``writes`` conditional merge patches of ``/status`` (each carrying the resourceVersion the last
answer returned, as emrops writes them), ``concurrency`` objects at a time (the load generator's
create concurrency). Its wall time is the floor ``bench/run.py`` divides the burst's time by.

Every request goes through ``emrops.controller.apiserver.ApiClient`` (aiohttp), the library emrops
writes with, with a connection per object in flight: the floor's own CPU per request is the
lowest of the clients at hand (httpx, which the load generator uses, costs about ten times as
much per request), so the floor is as fast as this machine's apiserver allows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from emrops.controller.apiserver import MERGE_PATCH, ApiClient
from emrops.controller.kube import collection_path
from harness.env import child_env
from harness.kube import AsyncKube, each_concurrently, login_from_kubeconfig
from harness.processes import PYTHON, READY_TIMEOUT, REPO, Child, wait_for

#: Status bodies in the order emrops writes them, about the size of emrops' (three conditions).
_PHASES = ("Pending", "Submitting", "Running", "Succeeded")


def _status(step: int) -> dict[str, Any]:
    phase = _PHASES[step % len(_PHASES)]
    conditions = [
        {
            "type": kind,
            "status": "True" if (kind == "Ready") == (phase == "Succeeded") else "False",
            "reason": phase,
            "message": f"{phase} (floor write {step + 1})",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        for kind in ("Ready", "Reconciling", "Stalled")
    ]
    status: dict[str, Any] = {"phase": phase, "observedGeneration": 1, "conditions": conditions}
    if phase in ("Running", "Succeeded"):
        status["operationId"] = f"op-floor-{step}"
    return status


async def apiserver_write_floor(
    kube: AsyncKube,
    kubeconfig: str,
    namespace: str,
    manifests: Sequence[Mapping[str, Any]],
    *,
    writes: int,
    concurrency: int = 32,
) -> dict[str, Any]:
    """Create every manifest and write its status ``writes`` times; how long it all took."""
    await kube.ensure_namespace(namespace)
    info = login_from_kubeconfig(kubeconfig)
    api = ApiClient(lambda: info, max_connections=concurrency, priority_connections=0, timeout=60)
    collection = collection_path(namespace)

    async def chain(manifest: Mapping[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        created = await api.request("POST", collection, body=dict(manifest))
        version = created["metadata"]["resourceVersion"]
        for step in range(writes):
            patch = {"metadata": {"resourceVersion": version}, "status": _status(step)}
            written = await api.request(
                "PATCH", f"{collection}/{name}/status", body=patch, content_type=MERGE_PATCH
            )
            version = written["metadata"]["resourceVersion"]

    try:
        await api.request("GET", collection, params={"limit": 1})  # the connection's TLS handshake
        began = time.monotonic()
        await each_concurrently(manifests, chain, concurrency=concurrency)
        seconds = time.monotonic() - began
    finally:
        await api.aclose()
    await kube.delete_all(namespace)
    return {
        "objects": len(manifests),
        "status_writes_per_object": writes,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "requests_per_second": round(len(manifests) * (1 + writes) / seconds, 1),
    }


class KopfFloorProcess(Child):
    """``bench/kopf_floor.py`` as a child process: a no-op kopf operator with emrops' kopf settings."""

    def __init__(self, workdir: Path, kubeconfig: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ready = workdir / "kopf-floor-ready"
        command = [PYTHON, str(REPO / "bench" / "kopf_floor.py"), "--ready-file", str(self.ready)]
        super().__init__(
            "kopf-floor", command, child_env({"KUBECONFIG": kubeconfig}), workdir / "kopf-floor.log"
        )

    def start(self) -> KopfFloorProcess:
        self.ready.unlink(missing_ok=True)
        super().start()

        def ready() -> bool:
            if problem := self.exited():
                raise RuntimeError(problem)
            return self.ready.exists()

        wait_for(ready, timeout=READY_TIMEOUT, what="the kopf floor's startup")
        return self
