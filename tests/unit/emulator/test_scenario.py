"""Scenario files: the shipped example, the default, generators, and errors that name their path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from emrops.emulator import cli
from emrops.emulator.scenario import ScenarioError, default_scenario, load_scenario, parse_scenario

EXAMPLE = Path(__file__).parents[3] / "operator" / "emrops" / "emulator" / "scenarios" / "example.yaml"


def test_example_scenario_loads() -> None:
    scenario = load_scenario(EXAMPLE)
    ids = [c.cluster_id for c in scenario.clusters]
    assert ids[0] == "c-8a3f2e1d9b7c6a50" and "c-load0020" in ids and len(ids) == 23
    assert {k.access_key_id for k in scenario.access_keys} >= {"emrops-demo", "STS.emrops-ops"}
    assert scenario.clusters[0] == default_scenario().clusters[0]  # the example spells out the default


def test_generated_clusters_are_distinct() -> None:
    scenario = parse_scenario({"clusters": [{"generate": {"count": 100, "prefix": "c-load"}}]})
    assert len({c.cluster_id for c in scenario.clusters}) == 100
    assert scenario.clusters[99].cluster_id == "c-load0100"


def test_secrets_stay_out_of_reprs() -> None:
    scenario = parse_scenario(
        {"access_keys": [{"id": "k", "secret": "hunter2", "security_token": "tok-secret"}]}
    )
    text = repr(scenario)
    assert "hunter2" not in text and "tok-secret" not in text and "emrops-demo-secret" not in text


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"clusters": [{"name": "x"}]}, "clusters[0].id"),
        ({"clusters": [{"id": "c", "abnormal_nodes": ["ghost"]}]}, "abnormal_nodes"),
        ({"clusters": [{"id": "c", "applications": {"HDFS": {"DataNode": ["nowhere"]}}}]}, "DataNode"),
        ({"clusters": [{"id": "c", "node_groups": [{"type": "WORKER"}]}]}, "type"),
        ({"rate_limit": {"qps": 1, "code": "InternalError"}}, "rate_limit.code"),
        ({"faults": [{"code": "Nope"}]}, "faults[0]"),
        ({"surprise": True}, "surprise: unknown field"),
        ([1, 2], "scenario"),
        ({"clusters": [{"id": "a"}, {"id": "a"}]}, "clusters[1].id: duplicate cluster id 'a'"),
        ({"clusters": [{"id": "c", "node_groups": [{"nodes": [{"id": "x"}]}]}]}, "nodes[0].name: required"),
        ({"clusters": [{"generate": {"count": 2}, "zone": ["z"]}]}, "clusters[0] (generated #1).zone"),
        ({"access_keys": [{"id": "k", "secret": "s", "expired": "yes"}]}, "access_keys[0].expired"),
        ({"rate_limit": {"qps": 0}}, "rate_limit.qps"),
    ],
)
def test_errors_name_the_path(raw: Any, where: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(where)):
        parse_scenario(raw)


def test_a_deep_error_names_its_whole_path() -> None:
    good = {"id": "c-ok", "node_groups": [{"type": "CORE", "nodes": 2}]}
    bad = {"id": "c-bad", "node_groups": [{"type": "CORE", "nodes": [{"id": "i-1", "name": "n", "zone": 1}]}]}
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"clusters": [good, {**good, "id": "c-ok2"}, bad]})
    assert str(caught.value) == "clusters[2].node_groups[0].nodes[0].zone: unknown field"


# The holes of the hand-written validator (issue 12): each was accepted, or failed unnamed.


def test_a_string_is_not_a_boolean() -> None:
    """``"no"`` read as true (any non-empty string did): now it is an error naming the field."""
    with pytest.raises(ScenarioError, match=r"^validation\.rolling_params_need_rolling_execute: .*boolean"):
        parse_scenario({"validation": {"rolling_params_need_rolling_execute": "no"}})
    off = parse_scenario({"validation": {"rolling_params_need_rolling_execute": False}})
    assert off.validation.rolling_params_need_rolling_execute is False


def test_a_negative_step_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"^engine\.step_seconds: .*greater than or equal to 0"):
        parse_scenario({"engine": {"step_seconds": -1}})
    assert parse_scenario({"engine": {"step_seconds": 0}}).engine.step_seconds == 0


def test_a_faults_seed_that_is_no_number_names_its_path() -> None:
    """It raised a bare ValueError (``invalid literal for int()``) that named nothing."""
    with pytest.raises(ScenarioError, match=r"^faults_seed: .*integer"):
        parse_scenario({"faults_seed": "x"})


def test_a_negative_node_count_is_refused() -> None:
    """``nodes: -2`` made an empty node group without a word."""
    with pytest.raises(ScenarioError, match=r"^clusters\[0\]\.node_groups\[0\]\.nodes: .*>= 0, got -2"):
        parse_scenario({"clusters": [{"id": "c", "node_groups": [{"nodes": -2}]}]})


def test_counted_nodes_are_named_as_emr_names_them() -> None:
    cluster = parse_scenario(
        {
            "clusters": [
                {"id": "c", "node_groups": [{"type": "core", "nodes": 2}, {"type": "CORE", "nodes": 1}]}
            ]
        }
    ).clusters[0]
    names = [[n.name for n in g.nodes] for g in cluster.node_groups]
    assert names == [["core1-1", "core1-2"], ["core2-1"]]
    assert cluster.node_groups[0].nodes[0].node_id == "i-c-core1-1"
    assert [g.type for g in cluster.node_groups] == ["CORE", "CORE"]


def test_errors_never_show_a_secret() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"access_keys": [{"id": "k", "secret": "hunter2", "security_token": ["tok-secret"]}]})
    assert "access_keys[0].security_token" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "tok-secret" not in str(caught.value)


def test_cli_access_keys_are_added() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--access-key", "a:b", "--access-key", "sts:s:t", "--time-scale", "0.5"])
    settings = cli.build_settings(args)
    keys = {k.access_key_id: k for k in settings.scenario.access_keys}
    assert keys["a"].secret == "b" and keys["sts"].security_token == "t" and "emrops-demo" in keys
    assert settings.time_scale == 0.5
