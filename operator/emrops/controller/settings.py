"""The operator's settings: one frozen object, built once from flags and ``EMROPS_*`` variables.

A flag given on the command line wins over its environment variable, which wins over the default.
Every error names both the flag and the variable. The settings are passed explicitly to whoever
needs them; there is no module-level mutable configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

from emrops.controller.labels import parse_label_selector
from emrops.emr.endpoints import parse_endpoint_override


class SettingsError(ValueError):
    """A flag or environment variable has an invalid value (the message names both)."""


@dataclass(frozen=True)
class WatchSettings:
    #: Namespaces to watch; empty means all namespaces (cluster-wide).
    namespaces: tuple[str, ...] = ()
    #: Only ServiceActions matching this label selector (to shard across operator processes).
    label_selector: str | None = None
    #: kopf peering name (HA); None runs standalone.
    peering: str | None = None
    #: kopf peering priority of this process.
    priority: int = 0


@dataclass(frozen=True)
class EmrSettings:
    #: Override of the EMR endpoint for every region (the emulator); None uses Alibaba's endpoints.
    endpoint: str | None = None
    #: ``public`` or ``vpc`` endpoints.
    network: Literal["public", "vpc"] = "public"
    #: Overall seconds one EMR call may take.
    call_timeout: float = 30.0


@dataclass(frozen=True)
class PollingSettings:
    #: First wait between GetOperation polls, in seconds.
    initial_seconds: float = 2.0
    #: Longest wait between polls; the wait doubles up to it.
    max_seconds: float = 30.0


@dataclass(frozen=True)
class RateLimitSettings:
    #: EMR calls per second per (access key, region); 0 turns the limiter off.
    qps: float = 10.0
    #: Calls that may be made at once after a quiet period.
    burst: int = 20


@dataclass(frozen=True)
class RetrySettings:
    #: First backoff ceiling, in seconds (full jitter below it).
    backoff_base: float = 1.0
    #: Largest backoff ceiling, in seconds.
    backoff_cap: float = 60.0
    #: Attempts allowed for bounded-retry errors (InvokeEcmError).
    bounded_attempts: int = 3


@dataclass(frozen=True)
class ServeSettings:
    #: Port of the Prometheus ``/metrics`` endpoint; 0 turns it off.
    metrics_port: int = 8080
    #: Port of the ``/healthz`` (liveness) and ``/readyz`` (readiness) endpoints; 0 turns them off.
    health_port: int = 8081


@dataclass(frozen=True)
class LeaderSettings:
    #: Elect one leader among replicas through a coordination.k8s.io Lease; the rest stand by.
    enabled: bool = False
    #: Namespace of the Lease; None: the pod's own (POD_NAMESPACE, or the ServiceAccount's).
    namespace: str | None = None
    #: Name of the Lease.
    name: str = "emrops"
    #: Seconds a leader's hold lasts from its last renewal; a standby takes over after it.
    lease_duration: float = 15.0
    #: Seconds the leader keeps trying to renew before it gives up leading (and exits).
    renew_deadline: float = 10.0
    #: Seconds between two attempts to take or renew the lease.
    retry_period: float = 2.0


@dataclass(frozen=True)
class ShutdownSettings:
    #: On SIGTERM, seconds a RunApplicationAction in flight may take to finish and be recorded
    #: before the operator exits; keep it below the pod's terminationGracePeriodSeconds.
    grace_seconds: float = 20.0


@dataclass(frozen=True)
class TenancySettings:
    #: The tenancy policy file (docs/security.md); None: the operator's own identity serves no
    #: namespace and Secret credentials are not restricted (``tenancy.CLOSED``). ``emrops run``
    #: checks the file before it starts (``tenancy_file.problem``).
    policy_file: str | None = None


@dataclass(frozen=True)
class LogSettings:
    format: Literal["text", "json"] = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    watch: WatchSettings = field(default_factory=WatchSettings)
    emr: EmrSettings = field(default_factory=EmrSettings)
    polling: PollingSettings = field(default_factory=PollingSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    shutdown: ShutdownSettings = field(default_factory=ShutdownSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    log: LogSettings = field(default_factory=LogSettings)
    tenancy: TenancySettings = field(default_factory=TenancySettings)


# --- flags ------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class _Option:
    flag: str
    env: str
    help: str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS = (
    _Option(
        "--namespace", "EMROPS_NAMESPACES", "namespace to watch (repeatable; default: all namespaces)", "NS"
    ),
    _Option(
        "--label-selector", "EMROPS_LABEL_SELECTOR", "only ServiceActions matching this label selector", "SEL"
    ),
    _Option(
        "--emr-endpoint", "EMROPS_EMR_ENDPOINT", "EMR API endpoint override (http only for loopback)", "URL"
    ),
    _Option("--emr-network", "EMROPS_EMR_NETWORK", "public or vpc EMR endpoints (default public)", "NET"),
    _Option(
        "--emr-call-timeout",
        "EMROPS_EMR_CALL_TIMEOUT",
        "seconds one EMR call may take (30); a run found mid-submission after a restart is "
        "declared Unknown once this plus a margin has passed",
        "S",
    ),
    _Option(
        "--shutdown-grace",
        "EMROPS_SHUTDOWN_GRACE",
        "on SIGTERM, seconds a RunApplicationAction in flight may take to be recorded (20); "
        "no new submission starts once shutdown begins",
        "S",
    ),
    _Option("--log-format", "EMROPS_LOG_FORMAT", "text or json (default text)", "FMT"),
    _Option("--log-level", "EMROPS_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR (default INFO)", "LEVEL"),
    _Option("--metrics-port", "EMROPS_METRICS_PORT", "port of /metrics (default 8080, 0 = off)", "PORT"),
    _Option(
        "--health-port", "EMROPS_HEALTH_PORT", "port of /healthz and /readyz (default 8081, 0 = off)", "PORT"
    ),
    _Option(
        "--rate-limit-qps",
        "EMROPS_RATE_LIMIT_QPS",
        "EMR calls/s per access key and region (10; 0 = off)",
        "N",
    ),
    _Option("--rate-limit-burst", "EMROPS_RATE_LIMIT_BURST", "burst of EMR calls (default 20)", "N"),
    _Option("--poll-initial-seconds", "EMROPS_POLL_INITIAL_SECONDS", "first GetOperation interval (2)", "S"),
    _Option("--poll-max-seconds", "EMROPS_POLL_MAX_SECONDS", "longest GetOperation interval (30)", "S"),
    _Option(
        "--leader-elect",
        "EMROPS_LEADER_ELECT",
        "true: elect one leader among replicas through a Lease; the others stand by (default false)",
        "BOOL",
    ),
    _Option(
        "--leader-election-namespace",
        "EMROPS_LEADER_ELECTION_NAMESPACE",
        "namespace of the Lease (default: the pod's namespace)",
        "NS",
    ),
    _Option(
        "--leader-election-id", "EMROPS_LEADER_ELECTION_ID", "name of the Lease (default emrops)", "NAME"
    ),
    _Option(
        "--leader-elect-lease-duration",
        "EMROPS_LEADER_ELECT_LEASE_DURATION",
        "seconds a leader's hold lasts; a standby takes over after it (15)",
        "S",
    ),
    _Option(
        "--leader-elect-renew-deadline",
        "EMROPS_LEADER_ELECT_RENEW_DEADLINE",
        "seconds the leader keeps trying to renew before it stops leading (10)",
        "S",
    ),
    _Option(
        "--leader-elect-retry-period",
        "EMROPS_LEADER_ELECT_RETRY_PERIOD",
        "seconds between attempts to take or renew the lease (2)",
        "S",
    ),
    _Option(
        "--tenancy-policy",
        "EMROPS_TENANCY_POLICY",
        "the tenancy policy file: which namespaces may use the operator's identity, and on which "
        "clusters (default: none may); read again when it changes",
        "FILE",
    ),
    _Option("--peering", "EMROPS_PEERING", "kopf peering name for HA (default: standalone)", "NAME"),
    _Option("--priority", "EMROPS_PRIORITY", "kopf peering priority (default 0)", "N"),
)
_BY_DEST = {o.dest: o for o in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every operator flag to ``parser`` (defaults None: the environment may fill them)."""
    for option in OPTIONS:
        text = f"{option.help} [env {option.env}]"
        if option.flag == "--namespace":
            parser.add_argument("-n", option.flag, action="append", metavar=option.metavar, help=text)
        else:
            parser.add_argument(option.flag, metavar=option.metavar, help=text)


def _raw(args: argparse.Namespace, env: Mapping[str, str], dest: str) -> tuple[str | None, str]:
    option = _BY_DEST[dest]
    value = getattr(args, dest, None)
    if value is not None:
        return str(value), f"{option.flag}"
    found = env.get(option.env)
    if found is not None and found.strip() != "":
        return found.strip(), f"{option.env}"
    return None, f"{option.flag} / {option.env}"


def _typed(
    args: argparse.Namespace,
    env: Mapping[str, str],
    dest: str,
    default: T,
    parse: Callable[[str], T],
    check: Callable[[T], bool] = lambda _: True,
    expect: str = "",
) -> T:
    raw, source = _raw(args, env, dest)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{source}: {raw!r} is not {expect}") from None
    if not check(value):
        raise SettingsError(f"{source}: {raw!r} is not {expect}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Build the settings; raise ``SettingsError`` naming the flag or variable on a bad value."""
    namespaces: tuple[str, ...]
    flag_namespaces = getattr(args, "namespace", None)
    if flag_namespaces:
        namespaces = tuple(n.strip() for item in flag_namespaces for n in item.split(",") if n.strip())
    else:
        namespaces = tuple(n.strip() for n in env.get("EMROPS_NAMESPACES", "").split(",") if n.strip())

    selector, selector_source = _raw(args, env, "label_selector")
    if selector is not None:
        try:
            parse_label_selector(selector)
        except ValueError as exc:
            raise SettingsError(f"{selector_source}: {exc}") from None

    endpoint, endpoint_source = _raw(args, env, "emr_endpoint")
    if endpoint is not None:
        try:
            parse_endpoint_override(endpoint, option=endpoint_source)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    port = ("a port number (0-65535)", lambda p: 0 <= p <= 65535)
    positive = "a positive number"
    poll_initial = _typed(args, env, "poll_initial_seconds", 2.0, float, lambda v: v > 0, positive)
    poll_max = _typed(
        args, env, "poll_max_seconds", max(30.0, poll_initial), float, lambda v: v > 0, positive
    )
    if poll_max < poll_initial:
        raise SettingsError(
            f"--poll-max-seconds / EMROPS_POLL_MAX_SECONDS ({poll_max:g}) is below "
            f"--poll-initial-seconds / EMROPS_POLL_INITIAL_SECONDS ({poll_initial:g})"
        )
    level = _typed(
        args,
        env,
        "log_level",
        "INFO",
        lambda s: _choice(("debug", "info", "warning", "error"))(s).upper(),
        expect="one of DEBUG, INFO, WARNING, ERROR",
    )
    leader = LeaderSettings(
        enabled=_typed(args, env, "leader_elect", False, _bool, expect="true or false"),
        namespace=_raw(args, env, "leader_election_namespace")[0],
        name=_raw(args, env, "leader_election_id")[0] or "emrops",
        lease_duration=_typed(
            args, env, "leader_elect_lease_duration", 15.0, float, lambda v: v > 0, positive
        ),
        renew_deadline=_typed(
            args, env, "leader_elect_renew_deadline", 10.0, float, lambda v: v > 0, positive
        ),
        retry_period=_typed(args, env, "leader_elect_retry_period", 2.0, float, lambda v: v > 0, positive),
    )
    if not leader.retry_period < leader.renew_deadline < leader.lease_duration:
        raise SettingsError(
            "--leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration "
            f"must hold (a leader must give up before a standby may take over), got {leader.retry_period:g}, "
            f"{leader.renew_deadline:g} and {leader.lease_duration:g}"
        )
    policy_file = _raw(args, env, "tenancy_policy")[0]
    return Settings(
        leader=leader,
        tenancy=TenancySettings(policy_file=policy_file),
        watch=WatchSettings(
            namespaces=namespaces,
            label_selector=selector,
            peering=_raw(args, env, "peering")[0],
            priority=_typed(args, env, "priority", 0, int, expect="an integer"),
        ),
        emr=EmrSettings(
            endpoint=endpoint,
            network=cast(
                Literal["public", "vpc"],
                _typed(
                    args, env, "emr_network", "public", _choice(("public", "vpc")), expect="public or vpc"
                ),
            ),
            call_timeout=_typed(args, env, "emr_call_timeout", 30.0, float, lambda v: v > 0, positive),
        ),
        polling=PollingSettings(initial_seconds=poll_initial, max_seconds=poll_max),
        rate_limit=RateLimitSettings(
            qps=_typed(args, env, "rate_limit_qps", 10.0, float, lambda v: v >= 0, "a number >= 0"),
            burst=_typed(args, env, "rate_limit_burst", 20, int, lambda v: v >= 0, "an integer >= 0"),
        ),
        serve=ServeSettings(
            metrics_port=_typed(args, env, "metrics_port", 8080, int, port[1], port[0]),
            health_port=_typed(args, env, "health_port", 8081, int, port[1], port[0]),
        ),
        shutdown=ShutdownSettings(
            grace_seconds=_typed(
                args, env, "shutdown_grace", 20.0, float, lambda v: v >= 0, "a number of seconds >= 0"
            )
        ),
        log=LogSettings(
            format=cast(
                Literal["text", "json"],
                _typed(args, env, "log_format", "text", _choice(("text", "json")), expect="text or json"),
            ),
            level=level,
        ),
    )
