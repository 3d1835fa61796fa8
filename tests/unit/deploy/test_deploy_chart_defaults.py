"""The chart's values.yaml passes the operator its own defaults, as the settings declare them.

The chart renders every tuning value as a flag (templates/_helpers.tpl, ``emrops.settings``), so
a default changed in emrops.controller.settings alone would not reach a default install.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from deploy_paths import CHART

from emrops.controller.settings import OPTIONS

#: values.yaml path -> the flag it becomes. The chart deliberately differs on --log-format (json
#: for log collectors) and --leader-elect (on: the chart grants the Lease RBAC), so those are not here.
SAME_DEFAULT = {
    "emr.callTimeoutSeconds": "--emr-call-timeout",
    "rateLimit.qps": "--rate-limit-qps",
    "rateLimit.burst": "--rate-limit-burst",
    "polling.initialSeconds": "--poll-initial-seconds",
    "polling.maxSeconds": "--poll-max-seconds",
    "shutdownGraceSeconds": "--shutdown-grace",
    "metrics.port": "--metrics-port",
    "health.port": "--health-port",
    "leaderElection.leaseDurationSeconds": "--leader-elect-lease-duration",
    "leaderElection.renewDeadlineSeconds": "--leader-elect-renew-deadline",
    "leaderElection.retryPeriodSeconds": "--leader-elect-retry-period",
}


def _value(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


@pytest.mark.parametrize(("path", "flag"), SAME_DEFAULT.items())
def test_chart_default_is_the_operators(path: str, flag: str) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    option = next(o for o in OPTIONS if o.flag == flag)
    assert _value(values, path) == option.default, f"values.yaml {path} differs from {flag}'s default"
