"""Fakes for the workers' unit tests: Kubernetes and EMR in memory; everything else is real.

``FakeStore`` keeps one namespace of ServiceActions and Secrets with the apiserver's optimistic
concurrency (resourceVersion preconditions, 409, 404) and a consistent ``list_cluster``;
``FakeEmr`` accepts every call (or raises a chosen error). The worker, the state machine and the
status writer under test are the real ones.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

from emrops.controller.backoff import Backoff
from emrops.controller.kube import Conflict, Gone, SecretUnreadable
from emrops.controller.machine import Event, Policy
from emrops.controller.metrics import Metrics
from emrops.controller.ratelimit import LimiterKey, RateLimiter
from emrops.controller.runner import Services
from emrops.emr.credentials import CredentialsProvider, StaticCredentials
from emrops.emr.models import (
    ComponentInstance,
    GetOperationRequest,
    GetOperationResponse,
    ListComponentInstancesRequest,
    ListNodesRequest,
    Node,
    Operation,
    OperationState,
    RunApplicationActionRequest,
    RunApplicationActionResponse,
)


class FakeStore:
    """One namespace of ServiceActions and Secrets, with optimistic concurrency like the apiserver."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.rv = 100
        self.writes = 0
        self.lists = 0
        #: Watchers, called (soon, in order) with every change: a watch that never lags.
        self.watchers: list[Callable[[str, dict[str, Any]], None]] = []

    def watch(self, supervisor: Any) -> None:
        """Feed ``supervisor.observe`` every later change, as the operator's watch does."""
        self.watchers.append(supervisor.observe)

    def _notify(self, event_type: str, obj: dict[str, Any]) -> None:
        for watcher in self.watchers:
            asyncio.get_running_loop().call_soon(watcher, event_type, copy.deepcopy(obj))

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[obj["metadata"]["name"]] = obj
        if self.watchers:
            self._notify("ADDED", obj)
        return copy.deepcopy(obj)

    def annotate(self, name: str, key: str, value: str) -> None:
        """``kubectl annotate --overwrite``: a metadata change, a new resourceVersion, a MODIFIED event."""
        obj = self.objects[name]
        obj["metadata"].setdefault("annotations", {})[key] = value
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._notify("MODIFIED", obj)

    def set_spec(self, name: str, key: str, value: Any) -> None:
        """``kubectl patch`` of one spec field: a new generation and resourceVersion, a MODIFIED event."""
        obj = self.objects[name]
        obj["spec"][key] = value
        obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._notify("MODIFIED", obj)

    def delete(self, name: str, *, tell_watchers: bool = True) -> dict[str, Any]:
        """Delete an object; ``tell_watchers=False`` is a DELETED event the watch missed."""
        obj = self.objects.pop(name)
        if tell_watchers:
            self._notify("DELETED", obj)
        return obj

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.objects:
            raise Gone(name)
        return copy.deepcopy(self.objects[name])

    async def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        await asyncio.sleep(0)  # let other workers interleave, as a real round trip would
        if name not in self.objects:
            raise Gone(name)
        obj = self.objects[name]
        if obj["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(name)
        current = obj.setdefault("status", {})
        for key, value in status.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        self.rv += 1
        self.writes += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._notify("MODIFIED", obj)
        return copy.deepcopy(obj)

    async def list_cluster(self, region_id: str, cluster_id: str) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        self.lists += 1
        return [
            copy.deepcopy(o)
            for o in self.objects.values()
            if o["spec"]["regionId"] == region_id and o["spec"]["clusterId"] == cluster_id
        ]

    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        if name not in self.secrets:
            raise SecretUnreadable(f"Secret {namespace}/{name} (spec.credentialsSecretRef) not found")
        return dict(self.secrets[name])


class FakeEmr:
    """EMR in memory: every call accepted (or ``submit_error`` raised).

    By default an operation completes on the second poll of it. With ``hold=True`` operations
    stay IN_PROGRESS until ``finish(operation_id)``; ``gate``, when set, holds every
    RunApplicationAction until it is set (a slow call).
    """

    def __init__(self, submit_error: Exception | None = None, *, hold: bool = False) -> None:
        self.submits: list[RunApplicationActionRequest] = []
        self.polls = 0
        self.submit_error = submit_error
        self.hold = hold
        self.gate: asyncio.Event | None = None
        #: operation id -> polls so far; ``done`` holds the finished ones.
        self.operations: dict[str, int] = {}
        self.done: set[str] = set()
        #: The most operations IN_PROGRESS at once (for the one-at-a-time checks).
        self.most_running = 0
        self.node_listings = 0
        #: Raised by the listings (ListComponentInstances), when set.
        self.list_error: Exception | None = None

    def running(self) -> set[str]:
        return set(self.operations) - self.done

    def finish(self, operation_id: str) -> None:
        self.done.add(operation_id)

    async def run_application_action(
        self, request: RunApplicationActionRequest, *, credentials: CredentialsProvider
    ) -> RunApplicationActionResponse:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0.01)
        self.submits.append(request)
        if self.submit_error is not None:
            raise self.submit_error
        operation_id = f"op-{len(self.submits)}"
        self.operations[operation_id] = 0
        self.most_running = max(self.most_running, len(self.running()))
        return RunApplicationActionResponse(request_id="req-1", operation_id=operation_id)

    async def get_operation(
        self, request: GetOperationRequest, *, credentials: CredentialsProvider
    ) -> GetOperationResponse:
        self.polls += 1
        op_id = request.operation_id
        self.operations[op_id] = self.operations.get(op_id, 0) + 1
        if not self.hold and self.operations[op_id] >= 2:
            self.done.add(op_id)
        state = OperationState.COMPLETED if op_id in self.done else OperationState.IN_PROGRESS
        return GetOperationResponse(
            request_id="req-p", operation=Operation(operation_id=op_id, operation_state=state)
        )

    async def iter_component_instances(
        self, request: ListComponentInstancesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[ComponentInstance]:
        if self.list_error is not None:
            raise self.list_error
        for node in ("i-1", "i-2"):
            yield ComponentInstance(
                application_name="HDFS",
                component_name="DataNode",
                node_id=node,
                component_instance_state="STARTED",
            )

    async def iter_nodes(
        self, request: ListNodesRequest, *, credentials: CredentialsProvider
    ) -> AsyncIterator[Node]:
        self.node_listings += 1
        yield Node(node_id="i-1", node_name="core1-1", node_state="Running")
        yield Node(node_id="i-2", node_name="core1-2", node_state="Stopped")


def service_action(name: str = "sa", secret: str | None = "creds") -> dict[str, Any]:  # noqa: S107 - a Secret name
    spec: dict[str, Any] = {
        "regionId": "cn-hangzhou",
        "clusterId": "c-1",
        "actionName": "restart",
        "componentInstanceSelector": {"runActionScope": "APPLICATION", "applicationName": "HDFS"},
    }
    if secret:
        spec["credentialsSecretRef"] = {"name": secret}
    return {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": spec,
    }


def services(
    store: FakeStore, emr: FakeEmr, events: list[Event], settle_seconds: float = 0.0, settle_max: float = 0.0
) -> Services:
    return Services(
        store=store,
        emr=emr,
        default_credentials=StaticCredentials("default-ak", "default-secret"),
        limiter=RateLimiter(0, 0),
        metrics=Metrics(),
        emit=lambda _body, event: events.append(event),
        policy=Policy(
            backoff=Backoff(base=0.01, cap=0.05),
            poll_initial=0.01,
            poll_max=0.02,
            submit_grace=0.2,
            credentials_recheck=0.05,
            queue_recheck=0.05,
        ),
        call_timeout=2.0,
        exists_recheck=0.05,
        intent_budget=0.1,
        settle_seconds=settle_seconds,
        settle_max=settle_max,
    )


async def wait_for_phase(store: FakeStore, name: str, phases: set[str]) -> dict[str, Any]:
    async with asyncio.timeout(5.0):
        while (store.objects[name].get("status") or {}).get("phase") not in phases:  # noqa: ASYNC110 - polling a fake
            await asyncio.sleep(0.01)
    return store.objects[name]


async def settle(done: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``done()`` holds, or ``within`` seconds pass (the test's assertions then judge).

    A condition, not a fixed sleep: on a loaded machine a fixed 0.3 s can be 30 ms of CPU.
    """
    async with asyncio.timeout(within):
        while not done():  # noqa: ASYNC110 - polling a fake
            await asyncio.sleep(0.01)


def new_store() -> FakeStore:
    s = FakeStore()
    s.secrets["creds"] = {"accessKeyId": "ak", "accessKeySecret": "sk"}
    return s


def created_at(name: str, when: str, **spec: Any) -> dict[str, Any]:
    """``service_action(name)`` created at ``when``, with ``spec`` keys replaced."""
    body = service_action(name)
    body["metadata"]["creationTimestamp"] = when
    body["spec"].update(spec)
    return body


class GatedLimiter(RateLimiter):
    """A limiter whose tokens come only once ``open`` is set: a worker parked in the token wait."""

    def __init__(self) -> None:
        super().__init__(0, 0)
        self.open = asyncio.Event()
        self.waiting = asyncio.Event()

    async def acquire(self, key: LimiterKey) -> None:
        self.waiting.set()
        await self.open.wait()
