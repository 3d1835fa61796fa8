"""kopf gets the replica's name from the operator, never from the passwd database.

Left to itself, kopf.operator names the process ``user@host`` with ``getpass.getuser()``, which
raises KeyError for a uid without a passwd entry: the image runs as 65532, which has none, and
on the e2e node (tests/e2e) every operator pod crashed at start. The operator now passes the same
identity it uses in its Lease (POD_NAME, set by the chart).
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

import kopf
import pytest

from emrops.controller import cli
from emrops.controller.settings import add_arguments, from_args


async def test_kopf_is_given_the_pods_name_so_no_passwd_entry_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_passwd_entry() -> str:
        raise KeyError("getpwuid(): uid not found: 65532")

    monkeypatch.setattr(getpass, "getuser", no_passwd_entry)
    monkeypatch.setenv("POD_NAME", "emrops-7d9f-x2k4q")
    monkeypatch.delenv("POD_ID", raising=False)
    given: dict[str, Any] = {}

    async def operator(**kwargs: Any) -> None:
        # kopf.operator asks for its own identity only when it is given none (kopf's
        # peering.detect_own_id, which calls getpass.getuser).
        given.update(kwargs)
        if kwargs.get("identity") is None:
            getpass.getuser()

    monkeypatch.setattr(kopf, "operator", operator)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = from_args(parser.parse_args(["--health-port=0", "--metrics-port=0"]), {})
    assert await cli._operate(settings, kopf.OperatorRegistry()) == 0
    assert given["identity"] == "emrops-7d9f-x2k4q"
