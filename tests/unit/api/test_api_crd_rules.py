"""The CRD's spec immutability rule names every spec field but the mutable ones.

CEL cannot say "all fields but one", so the rule lists them; a spec field added later without
being added to it would silently become mutable. This keeps the list complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CRD = Path(__file__).resolve().parents[3] / "crds" / "emrops.io_serviceactions.yaml"


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def immutability_rule() -> str:
    rules = [r["rule"] for r in spec_schema()["x-kubernetes-validations"] if "oldSelf.regionId" in r["rule"]]
    assert len(rules) == 1
    return " ".join(rules[0].split())


#: Fields that may change after creation: approving a suspended run, and the clean-up delay (as a
#: Job's ttlSecondsAfterFinished may change).
MUTABLE = frozenset({"suspend", "ttlSecondsAfterFinished"})


def test_every_spec_field_but_the_mutable_ones_is_immutable() -> None:
    schema = spec_schema()
    rule = immutability_rule()
    required = set(schema["required"])
    for name in schema["properties"]:
        if name in MUTABLE:
            assert f"self.{name}" not in rule
            continue
        assert f"self.{name} == oldSelf.{name}" in rule, name
        if name not in required:
            # An optional field may not be added or removed either.
            assert f"has(self.{name}) == has(oldSelf.{name})" in rule, name
