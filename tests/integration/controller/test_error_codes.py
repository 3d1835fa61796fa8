"""EMR error codes that may hide an applied action, and the label selector, end to end (issue 9).

Holes 5 and 11: an ``InternalError`` carrying ``x-acs-retry-after`` and a ``SignatureNonceUsed``
answer both leave open whether EMR started the action (RunApplicationAction has no client token),
so the run must end ``Unknown`` after exactly one call. Before the fixes the header, or the code's
old "retry" row, made the operator call again.

Hole 10: ``--label-selector team!=b`` made kopf raise on every event, so the operator handled
nothing; Kubernetes' ``team!=b`` also matches objects without the label.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.calls import RUN_ACTION, call_outcome
from harness.emulator import Emulator
from harness.kube import Kube
from harness.objects import CORES, TASKS, instance_scope, tagged_action
from harness.operator import OperatorFactory
from harness.status import condition, summarize

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def secret(kube: Kube) -> None:
    kube.create_secret()


@pytest.fixture
def cleanup(kube: Kube) -> Iterator[list[str]]:
    """Names to delete after the test, so that no later test's operator meets them."""
    names: list[str] = []
    yield names
    for name in names:
        kube.kubectl("delete", "serviceactions.emrops.io", name, "--wait=false", check=False)


def with_labels(obj: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "labels": labels}}


@pytest.mark.parametrize(
    ("name", "fault", "node"),
    [
        # The header says when to come back, not that EMR did nothing.
        pytest.param(
            "ec-internal-retry-after",
            {"code": "InternalError", "retry_after_ms": 200},
            CORES[0],
            id="InternalError-with-retry-after",
        ),
        # A fresh nonce is signed per attempt: a used one means a copy of this request got through.
        pytest.param("ec-nonce-used", {"code": "SignatureNonceUsed"}, CORES[1], id="SignatureNonceUsed"),
    ],
)
def test_an_answer_that_may_hide_an_applied_action_ends_unknown_after_one_call(
    name: str,
    fault: dict[str, Any],
    node: str,
    kube: Kube,
    module_emulator: Emulator,
    operator_factory: OperatorFactory,
    cleanup: list[str],
) -> None:
    code = fault["code"]
    module_emulator.faults([{"action": RUN_ACTION, "count": 1, **fault}])
    operator = operator_factory()
    try:
        cleanup.append(name)
        kube.create(tagged_action(name, "restart", instance_scope("HDFS", "DataNode", node)))

        obj = kube.wait_phase([name], ["Unknown", "Succeeded", "Failed"], timeout=90)[name]
        st = obj["status"]
        assert st["phase"] == "Unknown", summarize(obj)
        assert (st.get("lastError") or {}).get("code") == code, summarize(obj)
        assert condition(obj, "Stalled").get("status") == "True", summarize(obj)
        assert not st.get("operationId")

        calls = module_emulator.run_calls(name)
        assert [call_outcome(c) for c in calls] == [code]

        # Several poll cycles (--poll-max-seconds 1) and far past the 0.2 s retry-after: no resend.
        time.sleep(5)
        calls = module_emulator.run_calls(name)
        assert [call_outcome(c) for c in calls] == [code], "the operator called again"
        assert kube.status(name)["phase"] == "Unknown"
    finally:
        operator.stop()


def test_a_throttling_code_is_retried_no_sooner_than_its_retry_after(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory, cleanup: list[str]
) -> None:
    """The other side of hole 5: for a real throttling code the header still sets the wait."""
    name = "ec-throttled"
    module_emulator.faults(
        [{"action": RUN_ACTION, "code": "Throttling.User", "retry_after_ms": 3000, "count": 1}]
    )
    operator = operator_factory()
    try:
        cleanup.append(name)
        kube.create(tagged_action(name, "restart", instance_scope("HDFS", "DataNode", CORES[2])))

        obj = kube.wait_phase([name], ["Unknown", "Succeeded", "Failed"], timeout=90)[name]
        assert obj["status"]["phase"] == "Succeeded", summarize(obj)
        calls = module_emulator.run_calls(name)
        assert [call_outcome(c) for c in calls] == ["Throttling.User", "OK"]
        waited = calls[1]["time"] - calls[0]["time"]
        assert waited >= 2.9, f"retried {waited:.2f}s after a 3 s x-acs-retry-after"
    finally:
        operator.stop()


def test_label_selector_with_not_equal(
    kube: Kube, module_emulator: Emulator, operator_factory: OperatorFactory, cleanup: list[str]
) -> None:
    operator = operator_factory("--label-selector", "team!=b")
    try:
        objects = {
            "ec-team-a": with_labels(
                tagged_action("ec-team-a", "restart", instance_scope("YARN", "NodeManager", TASKS[0])),
                {"team": "a"},
            ),
            "ec-no-team": tagged_action(
                "ec-no-team", "restart", instance_scope("YARN", "NodeManager", TASKS[1])
            ),
            "ec-team-b": with_labels(
                tagged_action("ec-team-b", "restart", instance_scope("YARN", "NodeManager", CORES[3])),
                {"team": "b"},
            ),
        }
        cleanup.extend(objects)
        kube.create(*objects.values())

        handled = kube.wait_phase(["ec-team-a", "ec-no-team"], ["Succeeded", "Failed", "Unknown"], timeout=90)
        for name in ("ec-team-a", "ec-no-team"):
            assert handled[name]["status"]["phase"] == "Succeeded", summarize(handled[name])
            assert len(module_emulator.ok_runs(name)) == 1

        # The two were submitted, polled and finished: the excluded one had every chance to be seen.
        time.sleep(3)
        assert not kube.get("ec-team-b").get("status"), "the operator handled an object team!=b excludes"
        assert module_emulator.run_calls("ec-team-b") == []
        # kopf logs a filter or handler that raises as "... due to an unexpected error: ...".
        assert not operator.grep("unexpected error"), operator.tail(40)
    finally:
        operator.stop()
