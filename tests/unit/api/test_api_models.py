"""The ServiceAction spec model, its API request, the status round trip, and target overlap."""

from __future__ import annotations

import pydantic
import pytest

from emrops.api.spec import ServiceActionSpec
from emrops.api.status import Phase, RunStatus, format_time, parse_time
from emrops.api.targets import EVERYTHING, Target, overlap, targets_of

SPEC = {
    "regionId": "cn-hangzhou",
    "clusterId": "c-8a3f2e1d9b7c6a50",
    "actionName": "restart",
    "componentInstanceSelector": {
        "runActionScope": "COMPONENT_INSTANCE",
        "applicationName": "YARN",
        "componentInstances": [
            {"applicationName": "YARN", "componentName": "NodeManager", "nodeId": "i-bp1emrdemo000core1"},
            {"applicationName": "YARN", "componentName": "NodeManager", "nodeId": "i-bp1emrdemo000core2"},
        ],
    },
    "rollingExecute": True,
    "executeStrategy": "FAILED_BLOCK",
    "interval": 10,
    "batchSize": 1,
    "description": "roll NodeManagers",
    "credentialsSecretRef": {"name": "emrops-demo-credentials"},
    "activeDeadlineSeconds": 600,
    "someFutureField": "ignored",
}


class TestSpec:
    def test_reads_camel_case_and_builds_the_request(self) -> None:
        spec = ServiceActionSpec.from_body({"spec": SPEC})
        assert spec.credentials_secret_ref is not None
        assert spec.credentials_secret_ref.name == "emrops-demo-credentials"
        assert spec.active_deadline_seconds == 600
        params = spec.to_request().to_params()
        assert params == {
            "RegionId": "cn-hangzhou",
            "ClusterId": "c-8a3f2e1d9b7c6a50",
            "ActionName": "restart",
            "ComponentInstanceSelector": {
                "RunActionScope": "COMPONENT_INSTANCE",
                "ApplicationName": "YARN",
                "ComponentInstances": [
                    {
                        "ApplicationName": "YARN",
                        "ComponentName": "NodeManager",
                        "NodeId": "i-bp1emrdemo000core1",
                    },
                    {
                        "ApplicationName": "YARN",
                        "ComponentName": "NodeManager",
                        "NodeId": "i-bp1emrdemo000core2",
                    },
                ],
            },
            "RollingExecute": True,
            "ExecuteStrategy": "FAILED_BLOCK",
            "Interval": 10,
            "BatchSize": 1,
            "Description": "roll NodeManagers",
        }

    def test_optional_fields_stay_out_of_the_request(self) -> None:
        spec = ServiceActionSpec.model_validate(
            {
                "regionId": "cn-hangzhou",
                "clusterId": "c-1",
                "actionName": "start",
                "componentInstanceSelector": {"runActionScope": "APPLICATION", "applicationName": "HDFS"},
            }
        )
        params = spec.to_request().to_params()
        assert params["ComponentInstanceSelector"] == {
            "RunActionScope": "APPLICATION",
            "ApplicationName": "HDFS",
        }
        assert "RollingExecute" not in params and "Description" not in params

    @pytest.mark.parametrize(
        "change",
        [{"actionName": "reboot"}, {"regionId": None}, {"activeDeadlineSeconds": 0}],
    )
    def test_rejects_invalid_specs(self, change: dict[str, object]) -> None:
        with pytest.raises(pydantic.ValidationError):
            ServiceActionSpec.model_validate({**SPEC, **change})


class TestStatus:
    def test_round_trip_keeps_every_field(self) -> None:
        raw = {
            "observedGeneration": 1,
            "phase": "Running",
            "message": "EMR operation op-1 is running",
            "operationId": "op-1",
            "requestId": "req-1",
            "abnInstances": [{"nodeId": "i-1", "nodeName": "core1-1"}],
            "operation": {"state": "IN_PROGRESS", "startTime": "2025-01-01T00:00:00Z"},
            "progress": {"total": 4, "done": 1, "failed": 0, "message": "1 of 4 instances done"},
            "attempts": 2,
            "lastError": {"code": "ThrottlingException", "message": "slow down", "httpStatus": 400},
            "run": 1,
            "history": [{"run": 0, "phase": "Failed", "errorCode": "NotAuthorized"}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Running",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                },
                {
                    "type": "Stalled",
                    "status": "True",
                    "reason": "HumanProcessing",
                    "message": "look",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                },
            ],
        }
        status = RunStatus.from_dict(raw)
        assert status.phase is Phase.RUNNING
        assert status.reason == "HumanProcessing" and status.stalled
        out = status.to_dict()
        assert out["abnInstances"] == raw["abnInstances"]
        assert out["lastError"] == raw["lastError"]
        assert out["conditions"][1]["message"] == "look"
        assert "reason" not in out and "stalled" not in out
        assert RunStatus.from_dict(out) == status

    def test_empty_status(self) -> None:
        status = RunStatus.from_dict(None)
        assert status.phase is None and not status.finished and status.reason is None

    def test_times(self) -> None:
        moment = parse_time("2025-03-04T05:06:07Z")
        assert moment is not None and format_time(moment) == "2025-03-04T05:06:07Z"
        assert parse_time("yesterday") is None and parse_time(None) is None


def _targets(selector: dict[str, object]) -> frozenset[Target]:
    spec = ServiceActionSpec.model_validate(
        {"regionId": "r", "clusterId": "c", "actionName": "restart", "componentInstanceSelector": selector}
    )
    return targets_of(spec.component_instance_selector)


APP_YARN = {"runActionScope": "APPLICATION", "applicationName": "YARN"}
APP_HDFS = {"runActionScope": "APPLICATION", "applicationName": "HDFS"}
COMP_NM = {
    "runActionScope": "COMPONENT",
    "components": [{"applicationName": "YARN", "componentName": "NodeManager"}],
}
COMP_RM = {
    "runActionScope": "COMPONENT",
    "components": [{"applicationName": "YARN", "componentName": "ResourceManager"}],
}


def _inst(node: str, component: str = "NodeManager") -> dict[str, object]:
    return {
        "runActionScope": "COMPONENT_INSTANCE",
        "componentInstances": [{"applicationName": "YARN", "componentName": component, "nodeId": node}],
    }


class TestOverlap:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            (APP_YARN, APP_YARN, True),
            (APP_YARN, APP_HDFS, False),
            (APP_YARN, COMP_NM, True),
            (APP_HDFS, COMP_NM, False),
            (COMP_NM, COMP_RM, False),
            (COMP_NM, _inst("i-1"), True),
            (COMP_RM, _inst("i-1"), False),
            (_inst("i-1"), _inst("i-1"), True),
            (_inst("i-1"), _inst("i-2"), False),
            (_inst("i-1"), _inst("i-1", "DataNode"), False),
            (APP_YARN, _inst("i-9"), True),
        ],
    )
    def test_table(self, a: dict[str, object], b: dict[str, object], expected: bool) -> None:
        assert overlap(_targets(a), _targets(b)) is expected
        assert overlap(_targets(b), _targets(a)) is expected

    def test_a_selector_naming_nothing_overlaps_everything(self) -> None:
        assert _targets({"runActionScope": "COMPONENT"}) == frozenset({EVERYTHING})
        assert overlap(_targets({"runActionScope": "COMPONENT"}), _targets(APP_HDFS))
