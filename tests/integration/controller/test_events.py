"""Events on a real apiserver: one per transition that matters, a repeat aggregated (issue 11).

A clean run that can go at once posts exactly two Events (Submitted, Succeeded), each with count 1:
its acceptance is written with the intent (no Pending of its own), and the ``Submitting`` intent
and the ``Progress`` of each poll stay in the status. A repeat of the same
Event raises the count of the one already posted, as the apiserver stores it.
"""

from __future__ import annotations

import json
import time

import pytest

from emrops.controller.apiserver import ApiClient
from emrops.controller.events import EventRecorder, involved_object
from emrops.controller.login import connection_info
from emrops.controller.machine import Event
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import summarize

pytestmark = pytest.mark.integration

NAME = "events-restart"


def events_of(kube: Kube, name: str) -> list[dict[str, object]]:
    listing = json.loads(
        kube.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json").stdout
    )
    return list(listing["items"])


def wait_events(kube: Kube, name: str, reasons: set[str], timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        found = events_of(kube, name)
        if reasons <= {str(e["reason"]) for e in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_clean_run_posts_two_events(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory
) -> None:
    kube.create_secret()
    operator_factory()
    kube.create(tagged_action(NAME, "restart", instance_scope("HDFS", "DataNode", CORES[0])))
    obj = kube.wait_phase([NAME], timeout=60)[NAME]
    assert obj["status"]["phase"] == "Succeeded", summarize(obj)

    found = wait_events(kube, NAME, {"Submitted", "Succeeded"})
    assert sorted(str(e["reason"]) for e in found) == ["Submitted", "Succeeded"]
    assert all(e["count"] == 1 and e["source"] == {"component": "emrops"} for e in found), found
    assert all(e["involvedObject"]["uid"] == obj["metadata"]["uid"] for e in found)  # type: ignore[index]


async def test_a_repeat_on_the_real_apiserver_raises_the_count(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder's create and aggregate requests as the apiserver validates and stores them."""
    # Events name their object without the apiserver checking it exists: no operator acts on this one.
    obj = {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": "events-direct", "namespace": kube.namespace, "uid": "uid-events-direct"},
    }
    monkeypatch.setenv("KUBECONFIG", kube.cp.kubeconfig)
    api = ApiClient(connection_info)
    recorder = EventRecorder(api, instance="test")
    try:
        for _ in range(3):
            await recorder.post(
                involved_object(obj), Event("Throttled", "GetOperation: Throttling.User", "Warning")
            )
        await recorder.post(involved_object(obj), Event("Throttled", "GetOperation: another code", "Warning"))
    finally:
        await api.aclose()
    found = sorted(events_of(kube, "events-direct"), key=lambda e: str(e["message"]))
    assert all(e["involvedObject"]["uid"] == "uid-events-direct" for e in found), found  # type: ignore[index]
    assert [(e["message"], e["count"], e["type"]) for e in found] == [
        ("GetOperation: Throttling.User", 3, "Warning"),
        ("GetOperation: another code", 1, "Warning"),
    ]
