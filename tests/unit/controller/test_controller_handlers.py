"""``--label-selector`` as kopf really applies it (issue 9, hole 10).

The filters are checked by kopf's own matcher, on the path its reactor takes for every watch event
(``detect_watching_cause`` then ``registry._watching.get_handlers``), not by a stand-in: kopf calls
a label callback as ``fn(value, **cause_kwargs)``, which a lambda taking ``(v, _=None)`` cannot
accept, so every event raised ``TypeError`` and the operator handled nothing.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import kopf
import pytest
from kopf._core.engines.indexing import OperatorIndexers
from kopf._core.intents.causes import detect_watching_cause

from emrops.api.constants import GROUP, KIND, PLURAL, VERSION
from emrops.controller.handlers import build_registry, label_filter
from emrops.controller.login import NoDiffBase, configure_kopf
from emrops.controller.settings import add_arguments, from_args

RESOURCE = kopf.Resource(GROUP, VERSION, PLURAL, kind=KIND, namespaced=True)


def cause(labels: dict[str, str] | None) -> Any:
    """The cause kopf's reactor builds for one watch event of a ServiceAction with ``labels``."""
    metadata: dict[str, Any] = {"name": "sa", "namespace": "ns", "uid": "u-1"}
    if labels is not None:
        metadata["labels"] = labels
    raw = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": metadata, "spec": {}}
    return detect_watching_cause(
        raw_event={"type": "ADDED", "object": raw},  # type: ignore[typeddict-item]
        body=kopf.Body(raw),  # type: ignore[arg-type]
        resource=RESOURCE,
        indices=OperatorIndexers().indices,
        logger=logging.getLogger("test"),
        patch=kopf.Patch(),
        memo=kopf.Memo(),
    )


def handled(registry: kopf.OperatorRegistry, labels: dict[str, str] | None) -> list[str]:
    return [h.id for h in registry._watching.get_handlers(cause=cause(labels))]


def probe_registry(selector: str | None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.event(GROUP, VERSION, PLURAL, id="probe", labels=label_filter(selector), registry=registry)
    async def probe(**_: Any) -> None:
        pass  # never called: only the matching is under test

    return registry


CASES: list[tuple[str | None, dict[str, str] | None, bool]] = [
    (None, None, True),
    ("", {"a": "b"}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a=b", None, False),
    ("a==b", {"a": "b"}, True),
    ("a==b", {"a": "c"}, False),
    ("a!=b", {"a": "b"}, False),
    ("a!=b", {"a": "c"}, True),
    # Kubernetes: "a!=b" also matches objects without label a.
    ("a!=b", {}, True),
    ("a!=b", None, True),
    ("a", {"a": ""}, True),
    ("a", {"a": "x"}, True),
    ("a", {"b": "x"}, False),
    ("!a", {}, True),
    ("!a", {"a": "x"}, False),
    ("!a", {"a": ""}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a!=", {"a": ""}, False),
    ("a!=", {}, True),
    ("team=a,tier!=db", {"team": "a", "tier": "web"}, True),
    ("team=a,tier!=db", {"team": "a"}, True),
    ("team=a,tier!=db", {"team": "a", "tier": "db"}, False),
    ("team=a,tier!=db", {"team": "b", "tier": "web"}, False),
    ("team=a,tier!=db", {"tier": "web"}, False),
    (" team = a , tier != db ", {"team": "a", "tier": "web"}, True),
    ("team!=b,!frozen", {"team": "a"}, True),
    ("team!=b,!frozen", {"team": "a", "frozen": "yes"}, False),
    # Several terms on one key are all required, like Kubernetes (not the last one wins).
    ("tier!=db,tier!=cache", {"tier": "web"}, True),
    ("tier!=db,tier!=cache", {"tier": "db"}, False),
    ("tier!=db,tier!=cache", {"tier": "cache"}, False),
    ("tier!=db,tier!=cache", {}, True),
    ("tier,tier!=db", {"tier": "web"}, True),
    ("tier,tier!=db", {}, False),
    ("a=b,a=c", {"a": "b"}, False),
    ("emrops.io/shard=blue", {"emrops.io/shard": "blue"}, True),
    ("emrops.io/shard!=blue", {"emrops.io/shard": "green"}, True),
]


@pytest.mark.parametrize(("selector", "labels", "matches"), CASES)
def test_kopf_matches_like_kubernetes(
    selector: str | None, labels: dict[str, str] | None, matches: bool
) -> None:
    assert handled(probe_registry(selector), labels) == (["probe"] if matches else [])


@pytest.mark.parametrize("selector", ["team!=b", "team=a,tier!=db"])
def test_the_operators_own_event_handler_is_filtered(selector: str) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    registry = build_registry(from_args(parser.parse_args(["--label-selector", selector]), {}))
    assert handled(registry, {"team": "a"}) == ["serviceaction_event"]
    assert handled(registry, {"team": "b", "tier": "web"}) == []


@pytest.mark.parametrize(
    "selector",
    [
        "env in (a,b)",
        "env notin (a)",
        "a b",
        "=b",
        "!=b",
        "!",
        "a=b=c",
        "a!b",
        "a=b c",
        "-a=b",
        "a=" + "x" * 64,
        "Bad_Prefix/a=b",
        "a,,b",
    ],
)
def test_selectors_kubernetes_would_reject_are_refused(selector: str) -> None:
    # Set-based terms used to be split at their commas into nonsense that matched nothing, silently.
    with pytest.raises(ValueError, match="label selector"):
        label_filter(selector)


def test_kopf_builds_no_diff_base_and_no_handler_needs_one() -> None:
    """kopf deep-copied every watch event's body into a diff base that only change-detecting
    handlers and daemons read. ``NoDiffBase`` is right only while neither is registered."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = from_args(parser.parse_args([]), {})
    settings = kopf.OperatorSettings()
    configure_kopf(settings, config)
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)
    registry = build_registry(config)
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()
    assert handled(registry, {"team": "a"}) == ["serviceaction_event"]
    body = kopf.Body({"metadata": {"name": "sa"}, "spec": {"regionId": "r"}, "status": {"phase": "Running"}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
