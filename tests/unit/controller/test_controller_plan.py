"""The plan of a suspended run, from listings (emrops.controller.plan)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from emrops.api.constants import PLAN_LIST_LIMIT
from emrops.api.spec import ServiceActionSpec
from emrops.controller.plan import build_plan, summary
from emrops.controller.progress import InstanceState

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def spec(selector: dict[str, Any], **extra: Any) -> ServiceActionSpec:
    return ServiceActionSpec.model_validate(
        {
            "regionId": "cn-hangzhou",
            "clusterId": "c-1",
            "actionName": "restart",
            "componentInstanceSelector": selector,
            **extra,
        }
    )


def cluster(datanodes: int) -> list[InstanceState]:
    found = [InstanceState("HDFS", "NameNode", "i-master", "STARTED", "master1-1")]
    found += [
        InstanceState("HDFS", "DataNode", f"i-core{n}", "STARTED", f"core1-{n}")
        for n in range(1, datanodes + 1)
    ]
    return [*found, InstanceState("YARN", "NodeManager", "i-core1", "STARTED", "core1-1")]


def test_rolling_batches_interval_and_estimate() -> None:
    selector = {
        "runActionScope": "COMPONENT",
        "components": [{"applicationName": "HDFS", "componentName": "DataNode"}],
    }
    rolling = spec(selector, rollingExecute=True, batchSize=2, interval=30, executeStrategy="FAILED_CONTINUE")
    plan = build_plan(rolling, cluster(5), {}, run=1, now=NOW)
    assert plan.instance_count == 5 and plan.batch_count == 3 and plan.batch_size == 2
    assert [i.batch for i in plan.instances or ()] == [1, 1, 2, 2, 3]
    assert plan.interval == 30 and plan.execute_strategy == "FAILED_CONTINUE"
    assert plan.estimated_seconds == 3 * 120 + 2 * 30  # restart: 120s a batch, two intervals
    assert summary(plan) == "5 instances in 3 batches, about 7m"


def test_without_rolling_execute_everything_is_one_batch() -> None:
    plan = build_plan(
        spec({"runActionScope": "APPLICATION", "applicationName": "HDFS"}), cluster(3), {}, run=1, now=NOW
    )
    assert plan.instance_count == 4 and plan.batch_count == 1 and plan.batch_size == 4
    assert plan.interval is None and plan.execute_strategy is None
    assert plan.estimated_seconds == 120


def test_abnormal_instances_are_on_nodes_not_running_or_failed() -> None:
    instances = [*cluster(3), InstanceState("HDFS", "JournalNode", "i-core3", "START_FAILED", "core1-3")]
    plan = build_plan(
        spec({"runActionScope": "APPLICATION", "applicationName": "HDFS"}),
        instances,
        {"i-core2": "Stopped", "i-core1": "Running"},
        run=1,
        now=NOW,
    )
    odd = {(i.component_name, i.node_name, i.node_state, i.state) for i in plan.abnormal_instances or ()}
    assert odd == {
        ("DataNode", "core1-2", "Stopped", "STARTED"),
        ("JournalNode", "core1-3", None, "START_FAILED"),
    }
    assert plan.abnormal_count == 2 and "2 on abnormal nodes or failed" in summary(plan)


def test_named_instances_only() -> None:
    selector = {
        "runActionScope": "COMPONENT_INSTANCE",
        "componentInstances": [{"applicationName": "HDFS", "componentName": "DataNode", "nodeId": "i-core2"}],
    }
    plan = build_plan(spec(selector), cluster(3), {}, run=2, now=NOW)
    assert plan.run == 2 and plan.instance_count == 1
    assert [(i.node_id, i.batch) for i in plan.instances or ()] == [("i-core2", 1)]


def test_the_plan_stays_small_on_a_large_cluster() -> None:
    selector = {"runActionScope": "APPLICATION", "applicationName": "HDFS"}
    plan = build_plan(
        spec(selector),
        cluster(500),
        dict.fromkeys((f"i-core{n}" for n in range(500)), "Stopped"),
        run=1,
        now=NOW,
    )
    assert plan.instance_count == 501 and plan.abnormal_count == 499
    assert (
        len(plan.instances or ()) == PLAN_LIST_LIMIT and len(plan.abnormal_instances or ()) == PLAN_LIST_LIMIT
    )


def test_nothing_to_do_is_said_plainly() -> None:
    plan = build_plan(
        spec({"runActionScope": "APPLICATION", "applicationName": "KAFKA"}), cluster(2), {}, run=1, now=NOW
    )
    assert plan.instance_count == 0 and plan.batch_count == 0 and plan.estimated_seconds == 0
    assert summary(plan) == "0 instances in 0 batches, about 0s"
