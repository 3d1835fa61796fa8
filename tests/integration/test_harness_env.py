"""The harness's children never reach the parent's Alibaba Cloud identity (harness/env.py).

The parent here looks like a developer's machine with a cloud identity in every place the Alibaba
credential chain looks: keys and a profile name in ``ALIBABA_CLOUD_*`` variables, a CLI profile in
``~/.aliyun/config.json`` and a credentials file in ``~/.alibabacloud/credentials.ini``. An
operator started by the harness must see none of it: neither in its environment (read from
``/proc/<pid>/environ``) nor through the credential chain itself, run with that environment.
A control run of the same chain with the parent's environment (less the planted variables) finds
a planted profile, so the planted identity is real and the check cannot pass by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.operator import Operator
from harness.processes import PYTHON, REPO

pytestmark = pytest.mark.integration

LEAK = "LEAKED"
PLANTED_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": f"{LEAK}-ENV-AK",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": f"{LEAK}-ENV-SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN": f"{LEAK}-ENV-TOKEN",
    "ALICLOUD_ACCESS_KEY": f"{LEAK}-TF-AK",
    "ALICLOUD_SECRET_KEY": f"{LEAK}-TF-SECRET",
    "EMROPS_EMR_ENDPOINT": f"https://{LEAK.lower()}.example",
}

#: Run in a child: the operator's default credential chain (emrops.emr.credentials), and which of
#: the profile files the child can reach through its own HOME.
PROBE = """
import asyncio, json, os
from emrops.emr.credentials import DefaultChainCredentials
home = os.path.expanduser("~")
answer = {"files": [p for p in (".aliyun/config.json", ".alibabacloud/credentials.ini")
                    if os.path.exists(os.path.join(home, p))]}
try:
    answer["found"] = asyncio.run(DefaultChainCredentials().get()).access_key_id
except Exception as exc:
    answer["error"] = str(exc)
print(json.dumps(answer))
"""


def plant_identity(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / ".aliyun").mkdir(parents=True)
    (home / ".aliyun" / "config.json").write_text(
        json.dumps(
            {
                "current": "default",
                "profiles": [
                    {
                        "name": "default",
                        "mode": "AK",
                        "access_key_id": f"{LEAK}-CLI-AK",
                        "access_key_secret": f"{LEAK}-CLI-SECRET",
                        "region_id": "cn-hangzhou",
                    }
                ],
            }
        )
    )
    (home / ".alibabacloud").mkdir()
    ini = home / ".alibabacloud" / "credentials.ini"
    ini.write_text(
        f"[default]\ntype = access_key\n"
        f"access_key_id = {LEAK}-INI-AK\naccess_key_secret = {LEAK}-INI-SECRET\n"
    )
    monkeypatch.setenv("HOME", str(home))
    for name, value in PLANTED_ENV.items():
        monkeypatch.setenv(name, value)


def probe(env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [PYTHON, "-c", PROBE], env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_an_operator_started_by_the_harness_sees_no_cloud_identity_of_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "developer"
    plant_identity(home, monkeypatch)
    # The control: even without the planted variables, the parent's environment lets the chain
    # find a planted profile through HOME (with them, the chain's first link takes the planted key).
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))}
    assert str(probe(bare).get("found", "")).startswith(LEAK)

    operator = Operator(tmp_path / "work", tmp_path / "no-kubeconfig", "http://127.0.0.1:9")
    operator.start()
    try:
        raw = Path(f"/proc/{operator.pid}/environ").read_bytes()
    finally:
        operator.kill()
    seen = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    assert seen, "the operator exited before its environment could be read"
    assert LEAK not in raw.decode(), sorted(k for k, v in seen.items() if LEAK in v)
    assert not [k for k in seen if k.startswith(("ALIBABA_CLOUD_ACCESS", "ALICLOUD_", "EMROPS_"))]
    assert seen["HOME"] != str(home)
    assert seen["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true"
    assert seen["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] == "true"
    assert seen["KUBECONFIG"] == str(tmp_path / "no-kubeconfig")

    # The child's side: the credential chain, run with exactly the operator's environment.
    answer = probe(operator.env)
    assert answer["files"] == [], answer
    assert "found" not in answer, answer
    assert "no credentials from the Alibaba Cloud default chain" in str(answer["error"])
    assert LEAK not in str(answer["error"])
