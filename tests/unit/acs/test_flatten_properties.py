"""Flattening nested requests onto the query string, and reading them back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrops.acs.flatten import UnflattenError, flatten, unflatten
from emrops.emr.models import (
    ActionName,
    ComponentInstanceRef,
    ComponentInstanceSelector,
    ExecuteStrategy,
    RunActionScope,
    RunApplicationActionRequest,
)

# The machine is shared and loaded: judge properties, not generation speed.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Names as the API uses them: never empty, no dot (the separator), never all digits (a list index).
names = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=6).filter(lambda s: not s.isdigit())
values = st.text(max_size=8)


def _tree(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Empty dicts and lists flatten to nothing, so they cannot round-trip: the SDK drops them too.
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, min_size=1, max_size=4)
            | st.dictionaries(names, children, min_size=1, max_size=4)
        ),
        max_leaves=12,
    )


nested = st.dictionaries(names, _tree(values), max_size=5)


@relaxed
@given(nested)
def test_unflatten_inverts_flatten(params: dict[str, Any]) -> None:
    assert unflatten(flatten(params)) == params


@relaxed
@given(nested)
def test_flat_keys_are_dotted_paths_with_one_based_indices(params: dict[str, Any]) -> None:
    for key in flatten(params):
        for part in key.split("."):
            assert part
            if part.isdigit():
                assert int(part) >= 1


def test_request_model_flattens_like_the_sdk() -> None:
    request = RunApplicationActionRequest(
        region_id="cn-hangzhou",
        cluster_id="c-1",
        action_name=ActionName.RESTART,
        component_instance_selector=ComponentInstanceSelector(
            run_action_scope=RunActionScope.COMPONENT_INSTANCE,
            application_name="YARN",
            component_instances=[
                ComponentInstanceRef(application_name="YARN", component_name="NodeManager", node_id="i-1"),
                ComponentInstanceRef(application_name="YARN", component_name="NodeManager", node_id="i-2"),
            ],
        ),
        rolling_execute=True,
        execute_strategy=ExecuteStrategy.FAILED_BLOCK,
        interval=10,
        batch_size=1,
    )
    assert flatten(request.to_params()) == {
        "RegionId": "cn-hangzhou",
        "ClusterId": "c-1",
        "ActionName": "restart",
        "ComponentInstanceSelector.RunActionScope": "COMPONENT_INSTANCE",
        "ComponentInstanceSelector.ApplicationName": "YARN",
        "ComponentInstanceSelector.ComponentInstances.1.ApplicationName": "YARN",
        "ComponentInstanceSelector.ComponentInstances.1.ComponentName": "NodeManager",
        "ComponentInstanceSelector.ComponentInstances.1.NodeId": "i-1",
        "ComponentInstanceSelector.ComponentInstances.2.ApplicationName": "YARN",
        "ComponentInstanceSelector.ComponentInstances.2.ComponentName": "NodeManager",
        "ComponentInstanceSelector.ComponentInstances.2.NodeId": "i-2",
        "RollingExecute": "True",
        "ExecuteStrategy": "FAILED_BLOCK",
        "Interval": "10",
        "BatchSize": "1",
    }


def test_none_and_empty_lists_are_skipped() -> None:
    assert flatten({"A": None, "B": [], "C": {"D": None}, "E": False}) == {"E": "False"}


def test_unflatten_closes_gaps_in_list_order() -> None:
    assert unflatten({"X.3": "c", "X.1": "a", "X.10": "d"}) == {"X": ["a", "c", "d"]}


@pytest.mark.parametrize("flat", [{"A": "1", "A.B": "2"}, {"A.B": "2", "A": "1"}, {"A..B": "1"}, {".A": "1"}])
def test_unflatten_rejects_inconsistent_shapes(flat: dict[str, str]) -> None:
    with pytest.raises(UnflattenError):
        unflatten(flat)
