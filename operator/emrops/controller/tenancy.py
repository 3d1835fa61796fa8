"""The tenancy policy: which namespaces may have emrops act on which EMR clusters, and with what.

Pure: parsing and evaluation only, no file, clock or network (``tenancy_file`` reads the file).
A platform admin writes the policy (the chart renders it from its ``tenancy`` values into a
ConfigMap the operator mounts; docs/security.md). It has two lists of grants:

- ``operatorIdentity``: the namespaces whose ServiceActions may use the operator's own identity
  (RRSA, the default chain, the chart's ``credentials.existingSecret``), and on which regions and
  clusters. Absent or empty: no namespace may. Without any policy, too (``CLOSED``).
- ``secretCredentials``: the same for ServiceActions that name their own Secret
  (``spec.credentialsSecretRef``). Absent: any namespace, any cluster (the Secret's own RAM
  permissions are then the only limit); a list (even empty) restricts them.

A grant is ``{namespace, regions, clusters}``; each value is a name or a glob where ``*`` stands
for any run of characters and ``?`` for one (nothing else is special, so a pattern says what it
matches). Matching is exact and case-sensitive. Anything else in the document is an error, never
ignored: a misspelt key must not silently widen or drop a restriction. A policy that cannot be
read refuses everything (``unreadable``): failing closed, with the reason in every refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

OPERATOR_IDENTITY = "operatorIdentity"
SECRET_CREDENTIALS = "secretCredentials"  # noqa: S105 - a key name, not a secret
_GRANT_KEYS = ("namespace", "regions", "clusters")

#: What each pattern may hold: the characters of the names it matches, and the two wildcards.
_ALLOWED = {
    "namespace": re.compile(r"[a-z0-9*?-]{1,63}"),
    "regions": re.compile(r"[a-z0-9*?-]{1,64}"),
    "clusters": re.compile(r"[A-Za-z0-9*?-]{1,64}"),
}
_SHAPE = {
    "namespace": "lowercase letters, digits and '-'",
    "regions": "lowercase letters, digits and '-'",
    "clusters": "letters, digits and '-'",
}

#: Where a refused ServiceAction's owner is sent; the message names the values to change.
_DOC = "docs/security.md"


class PolicyInvalid(ValueError):
    """The policy document is malformed; the message names the entry and what is wrong."""


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob))


@dataclass(frozen=True)
class Grant:
    """One entry: namespaces matching ``namespace`` may act on these regions and clusters."""

    namespace: str
    regions: tuple[str, ...]
    clusters: tuple[str, ...]

    def covers_namespace(self, namespace: str) -> bool:
        return _pattern(self.namespace).fullmatch(namespace) is not None

    def covers(self, namespace: str, region_id: str, cluster_id: str) -> bool:
        return (
            self.covers_namespace(namespace)
            and any(_pattern(r).fullmatch(region_id) for r in self.regions)
            and any(_pattern(c).fullmatch(cluster_id) for c in self.clusters)
        )

    def describe(self) -> str:
        return f"regions {', '.join(self.regions)} / clusters {', '.join(self.clusters)}"


@dataclass(frozen=True)
class TenancyPolicy:
    """A parsed policy (or the reason none could be read: ``error``)."""

    operator_identity: tuple[Grant, ...] = ()
    #: None: Secret credentials are not restricted.
    secret_credentials: tuple[Grant, ...] | None = None
    #: Where the policy came from, for messages (a file path).
    source: str = "the built-in default (no --tenancy-policy given)"
    #: Set when the policy could not be read or parsed: every ServiceAction is refused.
    error: str | None = None


#: No policy given: the operator's identity serves no namespace, Secrets are not restricted.
CLOSED = TenancyPolicy()


def unreadable(source: str, error: str) -> TenancyPolicy:
    """The policy at ``source`` could not be read: refuse everything, saying why."""
    return TenancyPolicy(source=source, error=error)


@dataclass(frozen=True)
class Refusal:
    """Why a ServiceAction may not run: ``invalid`` when the policy itself is broken."""

    message: str
    invalid: bool = False


def parse(text: str, source: str) -> TenancyPolicy:
    """The policy in YAML ``text`` (read from ``source``); raises ``PolicyInvalid``."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyInvalid(f"not valid YAML: {exc}") from None
    if document is None:
        # An empty file is more likely a mistake (or a half-written file) than a policy.
        raise PolicyInvalid(f"the document is empty; write `{OPERATOR_IDENTITY}: []` to grant nothing")
    if not isinstance(document, Mapping):
        raise PolicyInvalid(
            f"the document must be a mapping with {OPERATOR_IDENTITY} and {SECRET_CREDENTIALS}"
        )
    unknown = sorted(str(k) for k in document if k not in (OPERATOR_IDENTITY, SECRET_CREDENTIALS))
    if unknown:
        raise PolicyInvalid(
            f"unknown key {', '.join(unknown)}; "
            f"a policy has only {OPERATOR_IDENTITY} and {SECRET_CREDENTIALS}"
        )
    identity = _grants(document.get(OPERATOR_IDENTITY), OPERATOR_IDENTITY)
    secrets = document.get(SECRET_CREDENTIALS)
    return TenancyPolicy(
        operator_identity=identity,
        secret_credentials=None if secrets is None else _grants(secrets, SECRET_CREDENTIALS),
        source=source,
    )


def _grants(value: Any, where: str) -> tuple[Grant, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyInvalid(f"{where} must be a list of grants ({{namespace, regions, clusters}})")
    return tuple(_grant(entry, f"{where}[{i}]") for i, entry in enumerate(value))


def _grant(entry: Any, where: str) -> Grant:
    if not isinstance(entry, Mapping):
        raise PolicyInvalid(f"{where} must be a mapping with namespace, regions and clusters")
    keys = {str(k) for k in entry}
    if keys != set(_GRANT_KEYS):
        missing = sorted(set(_GRANT_KEYS) - keys)
        extra = sorted(keys - set(_GRANT_KEYS))
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else []
        )
        raise PolicyInvalid(f"{where}: {'; '.join(problems)} (a grant has namespace, regions and clusters)")
    namespace = _glob(entry["namespace"], "namespace", f"{where}.namespace")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("regions", "clusters"):
        items = entry[key]
        if not isinstance(items, list) or not items:
            raise PolicyInvalid(f'{where}.{key} must be a non-empty list (use ["*"] for any)')
        lists[key] = tuple(_glob(item, key, f"{where}.{key}[{i}]") for i, item in enumerate(items))
    return Grant(namespace, lists["regions"], lists["clusters"])


def _glob(value: Any, kind: str, where: str) -> str:
    if not isinstance(value, str) or _ALLOWED[kind].fullmatch(value) is None:
        raise PolicyInvalid(
            f"{where}: {value!r} is not a name or glob of {_SHAPE[kind]} (wildcards: * and ?)"
        )
    return value


def refusal(
    policy: TenancyPolicy, namespace: str, region_id: str, cluster_id: str, *, secret: bool
) -> Refusal | None:
    """Why a ServiceAction in ``namespace`` may not act on this cluster, or None when it may.

    ``secret``: the ServiceAction names its own credentials Secret (else it would use the
    operator's identity). Messages name the policy, what it grants this namespace (never what it
    grants others) and the fix; they hold no secret.
    """
    rerun = "then set the annotation emrops.io/run-requested-at to a new value to run it"
    if policy.error is not None:
        return Refusal(
            f"The emrops tenancy policy ({policy.source}) cannot be read: {policy.error}. Until a "
            f"platform admin fixes it (the chart's tenancy values; {_DOC}) no ServiceAction may "
            f"start; nothing was sent to EMR. {rerun[0].upper()}{rerun[1:]}",
            invalid=True,
        )
    target = f"cluster {cluster_id} in region {region_id}"
    if secret:
        grants = policy.secret_credentials
        if grants is None or any(g.covers(namespace, region_id, cluster_id) for g in grants):
            return None
        what, key = "with its own credentials (spec.credentialsSecretRef)", SECRET_CREDENTIALS
        instead = ""
    else:
        grants = policy.operator_identity
        if any(g.covers(namespace, region_id, cluster_id) for g in grants):
            return None
        what, key = "with the operator's own identity (no spec.credentialsSecretRef)", OPERATOR_IDENTITY
        instead = "name a credentials Secret of this namespace in spec.credentialsSecretRef, or "
    mine = [g.describe() for g in grants if g.covers_namespace(namespace)]
    granted = (
        f"it grants this namespace only {'; '.join(mine)}" if mine else "it grants this namespace nothing"
    )
    return Refusal(
        f"Refused by the emrops tenancy policy ({policy.source}): namespace {namespace} may not act "
        f"on {target} {what}; {granted}. Nothing was sent to EMR. To run it, {instead}ask a platform "
        f"admin to grant it in tenancy.{key} (the chart's values; {_DOC}); {rerun}"
    )
