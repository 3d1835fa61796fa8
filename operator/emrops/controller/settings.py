"""The operator's settings: one frozen object, built once from flags and ``EMROPS_*`` variables.

Each option is declared once, on its dataclass field (``setting``): flag, variable, type (the
parser of its text), default and help. The argparse flags, the ``--help`` text, the settings
table of docs/operator.md (``hack/gen_docs.py``) and the check of the chart's values.yaml
defaults (tests/unit/deploy) are all derived from those declarations.

A flag given on the command line wins over its environment variable, which wins over the default.
Every error names both the flag and the variable. The settings are passed explicitly to whoever
needs them; there is no module-level mutable configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from emrops.controller.labels import parse_label_selector
from emrops.controller.machine import Policy
from emrops.emr.endpoints import parse_endpoint_override

T = TypeVar("T")


class SettingsError(ValueError):
    """A flag or environment variable has an invalid value (the message names both)."""


@dataclass(frozen=True)
class Option(Generic[T]):
    """One option: everything the parser, ``--help`` and docs/operator.md say about it."""

    flag: str
    env: str
    default: T
    #: Turns the given text into the value; raises ValueError when the text is not one.
    parse: Callable[[str], T]
    #: What the option does (Markdown: docs/operator.md shows it as is, ``--help`` without backticks).
    help: str
    metavar: str
    #: What a valid value is, for the error message; empty: the parser's own message says it.
    expect: str = ""
    #: The default in words, where its value says little (``None`` means "all namespaces").
    default_text: str = ""
    #: A one-letter alias of the flag.
    short: str = ""
    #: The flag may be given several times; the variable holds a comma-separated list.
    repeatable: bool = False
    #: An empty value given as a flag means the default, as an empty variable always does.
    empty_is_default: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def shown_default(self) -> str:
        """The default as docs/operator.md and ``--help`` show it."""
        if self.default_text:
            return self.default_text
        value: Any = self.default
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"

    def read(self, raw: str, source: str) -> T:
        try:
            return self.parse(raw)
        except ValueError as exc:
            if self.expect:
                raise SettingsError(f"{source}: {raw!r} is not {self.expect}") from None
            raise SettingsError(f"{source}: {exc}") from None


def setting(
    flag: str,
    env: str,
    default: T,
    parse: Callable[[str], T],
    help: str,
    metavar: str,
    **more: Any,
) -> T:
    """A dataclass field whose default is ``default``, carrying its ``Option``."""
    option = Option(flag, env, default, parse, help, metavar, **more)
    return field(default=default, metadata={"option": option})


# --- parsers of an option's text ----------------------------------------------------------------


def _checked(kind: Callable[[str], T], ok: Callable[[T], bool]) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not ok(value):
            raise ValueError(raw)
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], Any]:
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


def _text(raw: str) -> str | None:
    return raw


def _names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _label_selector(raw: str) -> str | None:
    parse_label_selector(raw)
    return raw


def _endpoint(raw: str) -> str | None:
    try:
        parse_endpoint_override(raw, option="")
    except ValueError as exc:
        # Its message starts with the option's name, which ``Option.read`` puts in front.
        raise ValueError(str(exc).removeprefix(": ")) from None
    return raw


def _seconds(flag: str, env: str, default: float, help: str) -> float:
    """A setting of a positive number of seconds."""
    return setting(
        flag, env, default, _checked(float, lambda v: v > 0), help, "S", expect="a positive number"
    )


def _port(flag: str, env: str, default: int, help: str) -> int:
    """A setting of a TCP port; 0 turns its server off."""
    parse = _checked(int, lambda p: 0 <= p <= 65535)
    return setting(flag, env, default, parse, help, "PORT", expect="a port number (0-65535)")


# --- the settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchSettings:
    namespaces: tuple[str, ...] = setting(
        "--namespace",
        "EMROPS_NAMESPACES",
        (),
        _names,
        "namespaces to watch",
        "NS",
        default_text="all namespaces",
        short="-n",
        repeatable=True,
    )
    label_selector: str | None = setting(
        "--label-selector",
        "EMROPS_LABEL_SELECTOR",
        None,
        _label_selector,
        "only ServiceActions whose labels match: `a=b` (or `a==b`), `a!=b` (also true when label `a` "
        "is absent, as in Kubernetes), `a`, `!a`; comma = and. Set-based terms (`in`, `notin`) are "
        "not supported",
        "SEL",
        default_text="none",
    )
    peering: str | None = setting(
        "--peering",
        "EMROPS_PEERING",
        None,
        _text,
        "kopf peering name (see HA)",
        "NAME",
        default_text="standalone",
    )
    priority: int = setting(
        "--priority", "EMROPS_PRIORITY", 0, int, "kopf peering priority", "N", expect="an integer"
    )


@dataclass(frozen=True)
class EmrSettings:
    endpoint: str | None = setting(
        "--emr-endpoint",
        "EMROPS_EMR_ENDPOINT",
        None,
        _endpoint,
        "one endpoint for every region (the emulator); `http://` only for loopback",
        "URL",
        default_text="Alibaba's regional endpoints",
    )
    network: Literal["public", "vpc"] = setting(
        "--emr-network",
        "EMROPS_EMR_NETWORK",
        "public",
        _choice("public", "vpc"),
        "public or VPC endpoints",
        "public|vpc",
        expect="public or vpc",
    )
    call_timeout: float = _seconds(
        "--emr-call-timeout",
        "EMROPS_EMR_CALL_TIMEOUT",
        30.0,
        "seconds one EMR call may take; a run found mid-submission after a restart becomes "
        "`Unknown` once this plus 20 s has passed",
    )


@dataclass(frozen=True)
class PollingSettings:
    initial_seconds: float = _seconds(
        "--poll-initial-seconds",
        "EMROPS_POLL_INITIAL_SECONDS",
        Policy.poll_initial,  # the state machine's own default: written once, there
        "first wait between `GetOperation` polls",
    )
    #: When not given, at least ``initial_seconds`` (``from_args``).
    max_seconds: float = _seconds(
        "--poll-max-seconds",
        "EMROPS_POLL_MAX_SECONDS",
        Policy.poll_max,
        "the wait doubles up to this",
    )


@dataclass(frozen=True)
class RateLimitSettings:
    qps: float = setting(
        "--rate-limit-qps",
        "EMROPS_RATE_LIMIT_QPS",
        10.0,
        _checked(float, lambda v: v >= 0),
        "EMR calls per second per (access key, region); `0` = off",
        "N",
        expect="a number >= 0",
    )
    burst: int = setting(
        "--rate-limit-burst",
        "EMROPS_RATE_LIMIT_BURST",
        20,
        _checked(int, lambda v: v >= 0),
        "calls allowed at once after a quiet period",
        "N",
        expect="an integer >= 0",
    )


@dataclass(frozen=True)
class ServeSettings:
    metrics_port: int = _port(
        "--metrics-port",
        "EMROPS_METRICS_PORT",
        8080,
        "Prometheus `/metrics`; `0` = off",
    )
    health_port: int = _port(
        "--health-port",
        "EMROPS_HEALTH_PORT",
        8081,
        "`/healthz` (liveness) and `/readyz` (readiness); `0` = off",
    )


@dataclass(frozen=True)
class ShutdownSettings:
    grace_seconds: float = setting(
        "--shutdown-grace",
        "EMROPS_SHUTDOWN_GRACE",
        20.0,
        _checked(float, lambda v: v >= 0),
        "on SIGTERM, seconds a `RunApplicationAction` in flight may take to return and be "
        "recorded; no new submission starts once shutdown begins (keep it below the pod's "
        "`terminationGracePeriodSeconds`)",
        "S",
        expect="a number of seconds >= 0",
    )


@dataclass(frozen=True)
class LeaderSettings:
    enabled: bool = setting(
        "--leader-elect",
        "EMROPS_LEADER_ELECT",
        False,
        _bool,
        "elect one leader among replicas through a `coordination.k8s.io` Lease; the others stand by (see HA)",
        "BOOL",
        expect="true or false",
    )
    namespace: str | None = setting(
        "--leader-election-namespace",
        "EMROPS_LEADER_ELECTION_NAMESPACE",
        None,
        _text,
        "namespace of the Lease (`POD_NAMESPACE`, else the ServiceAccount's namespace)",
        "NS",
        default_text="the pod's",
    )
    name: str = setting(
        "--leader-election-id",
        "EMROPS_LEADER_ELECTION_ID",
        "emrops",
        str,
        "name of the Lease",
        "NAME",
        empty_is_default=True,
    )
    lease_duration: float = _seconds(
        "--leader-elect-lease-duration",
        "EMROPS_LEADER_ELECT_LEASE_DURATION",
        15.0,
        "how long a leader's hold lasts; a standby takes over after it",
    )
    renew_deadline: float = _seconds(
        "--leader-elect-renew-deadline",
        "EMROPS_LEADER_ELECT_RENEW_DEADLINE",
        10.0,
        "how long the leader keeps trying to renew before it stops leading and exits (must be "
        "below the lease duration)",
    )
    retry_period: float = _seconds(
        "--leader-elect-retry-period",
        "EMROPS_LEADER_ELECT_RETRY_PERIOD",
        2.0,
        "time between attempts to take or renew the Lease",
    )


@dataclass(frozen=True)
class TenancySettings:
    #: ``emrops run`` checks the file before it starts (``tenancy_file.problem``); without one the
    #: policy is ``tenancy.CLOSED``.
    policy_file: str | None = setting(
        "--tenancy-policy",
        "EMROPS_TENANCY_POLICY",
        None,
        _text,
        "the [tenancy policy](security.md): which namespaces may use the operator's identity, or "
        "their own Secret, on which regions and clusters; read again when the file changes. A "
        "policy that does not parse stops the operator at start (exit code 2)",
        "FILE",
        default_text="none: the operator's identity serves no namespace",
    )


@dataclass(frozen=True)
class LogSettings:
    format: Literal["text", "json"] = setting(
        "--log-format",
        "EMROPS_LOG_FORMAT",
        "text",
        _choice("text", "json"),
        "one JSON object per line with `json`",
        "text|json",
        expect="text or json",
    )
    level: str = setting(
        "--log-level",
        "EMROPS_LOG_LEVEL",
        "INFO",
        lambda raw: _choice("debug", "info", "warning", "error")(raw).upper(),
        "`DEBUG` also shows kopf's per-event lines",
        "LEVEL",
        expect="one of DEBUG, INFO, WARNING, ERROR",
    )


@dataclass(frozen=True)
class Settings:
    watch: WatchSettings = field(default_factory=WatchSettings)
    emr: EmrSettings = field(default_factory=EmrSettings)
    polling: PollingSettings = field(default_factory=PollingSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    shutdown: ShutdownSettings = field(default_factory=ShutdownSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    log: LogSettings = field(default_factory=LogSettings)
    tenancy: TenancySettings = field(default_factory=TenancySettings)


# --- derived: flags, help, from_args ------------------------------------------------------------


def _declared() -> Iterator[tuple[str, type[Any], str, Option[Any]]]:
    """(section name, section class, field name, option) of every option, in declaration order."""
    for section in dataclasses.fields(Settings):
        kind = cast(type[Any], section.default_factory)
        for item in dataclasses.fields(kind):
            yield section.name, kind, item.name, item.metadata["option"]


#: Every option, in declaration order.
OPTIONS: tuple[Option[Any], ...] = tuple(option for *_, option in _declared())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every operator flag to ``parser`` (defaults None: the environment may fill them)."""
    for option in OPTIONS:
        names = [option.short, option.flag] if option.short else [option.flag]
        text = f"{option.help} (default {option.shown_default}) [env {option.env}]".replace("`", "")
        action = "append" if option.repeatable else "store"
        # argparse formats help with %: a literal percent sign must be doubled.
        parser.add_argument(*names, action=action, metavar=option.metavar, help=text.replace("%", "%%"))


def _raw(args: argparse.Namespace, env: Mapping[str, str], option: Option[Any]) -> tuple[str | None, str]:
    value = getattr(args, option.dest, None)
    if isinstance(value, list):
        value = ",".join(value)
    if value is not None and not (option.empty_is_default and value.strip() == ""):
        return str(value), option.flag
    found = env.get(option.env)
    if found is not None and found.strip() != "":
        return found.strip(), option.env
    return None, f"{option.flag} / {option.env}"


def from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Build the settings; raise ``SettingsError`` naming the flag or variable on a bad value."""
    sections: dict[str, tuple[type[Any], dict[str, Any]]] = {}
    given: set[str] = set()
    for section, kind, name, option in _declared():
        values = sections.setdefault(section, (kind, {}))[1]
        raw, source = _raw(args, env, option)
        if raw is not None:
            values[name] = option.read(raw, source)
            given.add(option.dest)
    settings = Settings(**{section: kind(**values) for section, (kind, values) in sections.items()})
    return _checked_together(settings, given)


def _checked_together(settings: Settings, given: set[str]) -> Settings:
    """The rules that tie two options together."""
    polling = settings.polling
    if "poll_max_seconds" not in given and polling.max_seconds < polling.initial_seconds:
        # A longer first wait alone raises the (unset) longest wait with it.
        polling = dataclasses.replace(polling, max_seconds=polling.initial_seconds)
        settings = dataclasses.replace(settings, polling=polling)
    if polling.max_seconds < polling.initial_seconds:
        raise SettingsError(
            f"--poll-max-seconds / EMROPS_POLL_MAX_SECONDS ({polling.max_seconds:g}) is below "
            f"--poll-initial-seconds / EMROPS_POLL_INITIAL_SECONDS ({polling.initial_seconds:g})"
        )
    leader = settings.leader
    if not leader.retry_period < leader.renew_deadline < leader.lease_duration:
        raise SettingsError(
            "--leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration "
            f"must hold (a leader must give up before a standby may take over), got {leader.retry_period:g}, "
            f"{leader.renew_deadline:g} and {leader.lease_duration:g}"
        )
    return settings
