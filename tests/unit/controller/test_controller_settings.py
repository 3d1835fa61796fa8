"""Operator settings from flags and EMROPS_* environment: precedence, defaults, errors."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from emrops.controller.settings import OPTIONS, SettingsError, add_arguments, from_args


def parse(argv: list[str], env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_args(parser.parse_args(argv), env or {})


def test_defaults() -> None:
    s = parse([])
    assert s.watch.namespaces == () and s.watch.peering is None
    assert s.emr.endpoint is None and s.emr.network == "public"
    assert (s.serve.metrics_port, s.serve.health_port) == (8080, 8081)
    assert (s.rate_limit.qps, s.rate_limit.burst) == (10.0, 20)
    assert (s.polling.initial_seconds, s.polling.max_seconds) == (2.0, 30.0)
    assert (s.log.format, s.log.level) == ("text", "INFO")


def test_flags_win_over_environment() -> None:
    env = {
        "EMROPS_NAMESPACES": "a, b",
        "EMROPS_METRICS_PORT": "9000",
        "EMROPS_EMR_ENDPOINT": "http://127.0.0.1:1",
    }
    s = parse(["--metrics-port", "0"], env)
    assert s.watch.namespaces == ("a", "b")
    assert s.serve.metrics_port == 0
    assert s.emr.endpoint == "http://127.0.0.1:1"
    s = parse(["-n", "x", "-n", "y,z"], env)
    assert s.watch.namespaces == ("x", "y", "z")


def test_environment_values() -> None:
    s = parse(
        [],
        {
            "EMROPS_LOG_FORMAT": "JSON",
            "EMROPS_LOG_LEVEL": "debug",
            "EMROPS_RATE_LIMIT_QPS": "0",
            "EMROPS_PEERING": "emrops",
            "EMROPS_PRIORITY": "5",
            "EMROPS_LABEL_SELECTOR": "shard=a",
            "EMROPS_EMR_NETWORK": "vpc",
        },
    )
    assert (s.log.format, s.log.level) == ("json", "DEBUG")
    assert s.rate_limit.qps == 0
    assert (s.watch.peering, s.watch.priority, s.watch.label_selector) == ("emrops", 5, "shard=a")
    assert s.emr.network == "vpc"


def test_leader_election() -> None:
    assert parse([], {}).leader.enabled is False
    leader = parse(["--leader-elect", "true"], {"EMROPS_LEADER_ELECTION_ID": "shard-a"}).leader
    assert (leader.enabled, leader.name, leader.namespace) == (True, "shard-a", None)
    assert (leader.lease_duration, leader.renew_deadline, leader.retry_period) == (15.0, 10.0, 2.0)


def test_shutdown_grace() -> None:
    assert parse([], {}).shutdown.grace_seconds == 20.0
    assert parse(["--shutdown-grace", "5"], {"EMROPS_SHUTDOWN_GRACE": "9"}).shutdown.grace_seconds == 5.0
    assert parse([], {"EMROPS_SHUTDOWN_GRACE": "0"}).shutdown.grace_seconds == 0.0


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--metrics-port", "http"], {}, "--metrics-port"),
        ([], {"EMROPS_HEALTH_PORT": "70000"}, "EMROPS_HEALTH_PORT"),
        (["--poll-initial-seconds", "-1"], {}, "--poll-initial-seconds"),
        (["--poll-initial-seconds", "10", "--poll-max-seconds", "5"], {}, "--poll-max-seconds"),
        ([], {"EMROPS_LOG_FORMAT": "xml"}, "EMROPS_LOG_FORMAT"),
        (["--emr-network", "private"], {}, "--emr-network"),
        ([], {"EMROPS_RATE_LIMIT_BURST": "-2"}, "EMROPS_RATE_LIMIT_BURST"),
        (["--emr-endpoint", "ftp://x"], {}, "--emr-endpoint"),
        (["--label-selector", "tier in (a,b)"], {}, "--label-selector"),
        ([], {"EMROPS_LABEL_SELECTOR": "bad key=x"}, "EMROPS_LABEL_SELECTOR"),
        (["--shutdown-grace", "-1"], {}, "--shutdown-grace"),
        (["--leader-elect", "maybe"], {}, "--leader-elect"),
        (["--leader-elect-renew-deadline", "20"], {}, "--leader-elect-renew-deadline"),
        ([], {"EMROPS_LEADER_ELECT_RETRY_PERIOD": "0"}, "EMROPS_LEADER_ELECT_RETRY_PERIOD"),
    ],
)
def test_errors_name_the_flag_or_variable(argv: list[str], env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        parse(argv, env)


def test_help_shows_every_option_with_its_variable_and_default() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for option in OPTIONS:
        assert option.flag in text
        assert f"(default {option.shown_default.replace('`', '')}) [env {option.env}]" in text


def test_the_declared_default_is_the_settings_default() -> None:
    defaults = parse([])
    for option in OPTIONS:
        section = next(s for s in vars(defaults).values() if option.dest in _dests(s))
        assert getattr(section, _dests(section)[option.dest]) == option.default, option.flag


def _dests(section: object) -> dict[str, str]:
    """flag's dest -> field name, for one settings section."""
    return {f.metadata["option"].dest: f.name for f in dataclasses.fields(section)}  # type: ignore[arg-type]


def test_an_unset_longest_poll_rises_with_a_longer_first_poll() -> None:
    assert parse(["--poll-initial-seconds", "45"]).polling.max_seconds == 45.0
    assert parse([], {"EMROPS_POLL_INITIAL_SECONDS": "5"}).polling.max_seconds == 30.0


def test_empty_values() -> None:
    assert parse(["--leader-election-id", ""]).leader.name == "emrops"
    assert parse([], {"EMROPS_PEERING": " "}).watch.peering is None
    with pytest.raises(SettingsError, match=r"^--emr-endpoint: must not be empty$"):
        parse(["--emr-endpoint", ""])
