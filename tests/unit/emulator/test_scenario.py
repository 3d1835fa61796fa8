"""Scenario files: the shipped example, the default, generators and errors."""

from __future__ import annotations

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
        ({"surprise": True}, "surprise"),
        ([1, 2], "scenario"),
    ],
)
def test_errors_name_the_path(raw: Any, where: str) -> None:
    with pytest.raises(ScenarioError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(raw)


def test_cli_access_keys_are_added() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--access-key", "a:b", "--access-key", "sts:s:t", "--time-scale", "0.5"])
    settings = cli.build_settings(args)
    keys = {k.access_key_id: k for k in settings.scenario.access_keys}
    assert keys["a"].secret == "b" and keys["sts"].security_token == "t" and "emrops-demo" in keys
    assert settings.time_scale == 0.5
