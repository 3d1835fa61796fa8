"""The emulator refuses replayed nonces and stale dates, like EMR's gateway (raw signed requests).

Requests are built and signed exactly as the operator's client sends them (``emrops.emr.wire``),
then sent to a real ``emrops emulator`` process with httpx, byte for byte, twice or with an old
``x-acs-date``. A replay of a RunApplicationAction must not start a second operation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from yarl import URL

from emrops.emr.credentials import Credential
from emrops.emr.wire import build_request, random_nonce
from harness.emulator import Emulator, as_httpx
from harness.objects import ACCESS_KEY_ID, ACCESS_KEY_SECRET, CLUSTER_ID

pytestmark = pytest.mark.integration

RUN_PARAMS: dict[str, Any] = {
    "RegionId": "cn-hangzhou",
    "ClusterId": CLUSTER_ID,
    "ActionName": "restart",
    "ComponentInstanceSelector": {
        "RunActionScope": "COMPONENT",
        "Components": [{"ApplicationName": "SPARK", "ComponentName": "SparkHistoryServer"}],
    },
    "Description": "replay-test",
}
GET_PARAMS = {"RegionId": "cn-hangzhou", "ClusterId": CLUSTER_ID}


def signed(
    emulator: Emulator,
    action: str,
    params: dict[str, Any],
    *,
    date: datetime | None = None,
    nonce: str | None = None,
    credential: Credential | None = None,
) -> httpx.Request:
    return as_httpx(
        build_request(
            action=action,
            params=params,
            base_url=URL(emulator.url + "/"),
            credential=credential or Credential(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
            user_agent="emrops-security-test",
            date=(date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            nonce=nonce or random_nonce(),
        )
    )


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.send(request)


def copy_of(request: httpx.Request) -> httpx.Request:
    return httpx.Request(request.method, request.url, headers=request.headers, content=request.content)


def test_a_replayed_run_application_action_is_refused_and_runs_once(emulator: Emulator) -> None:
    original = signed(emulator, "RunApplicationAction", RUN_PARAMS)
    first = send(copy_of(original))
    assert first.status_code == 200, first.text
    assert first.json()["OperationId"]

    replay = send(copy_of(original))
    assert replay.status_code == 400, replay.text
    assert replay.json()["Code"] == "SignatureNonceUsed"

    runs = [c for c in emulator.calls() if c["action"] == "RunApplicationAction"]
    assert [bool(c["operation_id"]) for c in runs] == [True, False]


def test_a_replayed_read_is_refused(emulator: Emulator) -> None:
    original = signed(emulator, "GetCluster", GET_PARAMS)
    assert send(copy_of(original)).status_code == 200
    again = send(copy_of(original))
    assert again.status_code == 400 and again.json()["Code"] == "SignatureNonceUsed"


def test_the_same_nonce_with_a_new_signature_is_still_refused(emulator: Emulator) -> None:
    """Re-signing with another date but the same nonce is still a replay."""
    nonce = random_nonce()
    assert send(signed(emulator, "GetCluster", GET_PARAMS, nonce=nonce)).status_code == 200
    later = datetime.now(UTC) + timedelta(seconds=2)
    again = send(signed(emulator, "GetCluster", GET_PARAMS, nonce=nonce, date=later))
    assert again.status_code == 400 and again.json()["Code"] == "SignatureNonceUsed"


@pytest.mark.parametrize("offset_minutes", [-16, -60 * 24, 16])
def test_a_stale_or_future_date_is_refused(emulator: Emulator, offset_minutes: int) -> None:
    moment = datetime.now(UTC) + timedelta(minutes=offset_minutes)
    response = send(signed(emulator, "RunApplicationAction", RUN_PARAMS, date=moment))
    assert response.status_code == 400, response.text
    assert response.json()["Code"].startswith("InvalidTimeStamp")
    assert not any(c["operation_id"] for c in emulator.calls())


def test_a_date_within_the_window_is_accepted(emulator: Emulator) -> None:
    """Control case: the same request with a slightly old (but fresh enough) date passes."""
    moment = datetime.now(UTC) - timedelta(minutes=5)
    assert send(signed(emulator, "GetCluster", GET_PARAMS, date=moment)).status_code == 200


def test_a_tampered_parameter_breaks_the_signature(emulator: Emulator) -> None:
    request = signed(emulator, "RunApplicationAction", RUN_PARAMS)
    url = request.url.copy_with(query=request.url.query.replace(b"SparkHistoryServer", b"NodeManager"))
    tampered = httpx.Request("POST", url, headers=request.headers)
    response = send(tampered)
    assert response.status_code == 400
    assert response.json()["Code"] in ("IncompleteSignature", "SignatureDoesNotMatch")
    assert not any(c["operation_id"] for c in emulator.calls())
