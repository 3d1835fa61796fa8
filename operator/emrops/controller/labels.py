"""Label selectors as ``--label-selector`` takes them: Kubernetes' equality-based syntax.

Pure (no kopf), so the settings can refuse a bad selector at start with the flag's name, and
``handlers`` can turn a good one into kopf's label filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# Kubernetes' label syntax, so that a typo fails at start instead of silently matching nothing.
#: A label name (and a value, unless empty): at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends.
_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
#: ``name`` or ``prefix/name``, the prefix a DNS subdomain (``emrops.io/shard``).
_LABEL_KEY = re.compile(rf"(?:{_DNS_LABEL}(?:\.{_DNS_LABEL})*/)?{_NAME}")
_LABEL_VALUE = re.compile(rf"(?:{_NAME})?")


@dataclass(frozen=True)
class LabelRequirement:
    """One term of a label selector: ``key=value`` (``==``), ``key!=value``, ``key`` or ``!key``."""

    key: str
    op: Literal["=", "!=", "exists", "absent"]
    value: str = ""

    def matches(self, value: str | None) -> bool:
        """Whether a label value (None: no such label) satisfies the term, as in Kubernetes."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value  # an object without the label matches, like Kubernetes
        if self.op == "exists":
            return value is not None
        return value is None


def parse_label_selector(selector: str) -> list[LabelRequirement]:
    """The terms of an equality-based selector (comma = and); ``ValueError`` for anything else.

    Set-based terms (``in``, ``notin``) are refused rather than half-parsed: split at their commas
    they became filters that matched nothing, and the operator silently handled nothing.
    """
    found: list[LabelRequirement] = []
    for term in (t.strip() for t in selector.split(",")):
        if "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            op: Literal["=", "!=", "exists", "absent"] = "!="
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=", 1).split("=", 1))
            op = "="
        elif term.startswith("!"):
            key, value, op = term[1:].strip(), "", "absent"
        else:
            key, value, op = term, "", "exists"
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise ValueError(
                f"label selector {selector!r}: {term!r} is not key=value, key==value, key!=value, key "
                "or !key with a valid label key and value"
            )
        found.append(LabelRequirement(key, op, value))
    return found
