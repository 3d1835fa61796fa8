"""The gateway: signatures, dates, nonces, STS, action routing, error bodies."""

from __future__ import annotations

from emulator_api import Api, utc

from emrops.acs.codes import TABLE
from harness.objects import ACCESS_KEY_ID, CLUSTER_ID, REGION


async def test_signed_call_answers_json_with_request_id(api: Api) -> None:
    reply = await api.call("ListClusters", {"RegionId": REGION})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json;charset=utf-8"
    assert reply.body["RequestId"] == reply.headers["x-acs-request-id"]
    assert [c["ClusterId"] for c in reply.body["Clusters"]] == [CLUSTER_ID]


async def test_error_body_has_exactly_the_emr_fields_and_table_status(api: Api) -> None:
    reply = await api.call("GetCluster", {"RegionId": REGION, "ClusterId": "c-nope"})
    assert reply.status == TABLE["ResourceNotFound"].http_status == 404
    assert set(reply.body) == {"RequestId", "HostId", "Code", "Message"}
    assert reply.body["Code"] == "ResourceNotFound"
    assert "c-nope" in reply.body["Message"]
    assert reply.headers["x-acs-request-id"] == reply.body["RequestId"]


async def test_unsigned_request_is_refused(api: Api) -> None:
    reply = await api.send("POST", f"RegionId={REGION}", {"x-acs-action": "ListClusters"})
    assert (reply.status, reply.code) == (400, "IncompleteSignature")


async def test_wrong_secret_is_refused(api: Api) -> None:
    reply = await api.call("ListClusters", {"RegionId": REGION}, secret="not-the-secret")
    assert (reply.status, reply.code) == (400, "IncompleteSignature")
    assert api.state.calls[-1].outcome == "IncompleteSignature"


async def test_malformed_authorization_is_refused(api: Api) -> None:
    reply = await api.call(
        "ListClusters", {"RegionId": REGION}, unsigned_headers={"authorization": "ACS3-HMAC-SHA256 garbage"}
    )
    assert reply.code == "IncompleteSignature"
    reply = await api.call(
        "ListClusters",
        {"RegionId": REGION},
        unsigned_headers={"authorization": "HMAC-MD5 Credential=a,SignedHeaders=b,Signature=c"},
    )
    assert reply.code == "IncompleteSignature"


async def test_unknown_access_key(api: Api) -> None:
    reply = await api.call("ListClusters", {"RegionId": REGION}, key="nobody")
    assert (reply.status, reply.code) == (404, "InvalidAccessKeyId.NotFound")


async def test_tampered_signed_header_fails_but_unsigned_header_is_ignored(api: Api) -> None:
    ok = await api.call("ListClusters", {"RegionId": REGION}, unsigned_headers={"user-agent": "changed"})
    assert ok.status == 200
    bad = await api.call(
        "ListClusters", {"RegionId": REGION}, unsigned_headers={"x-acs-action": "GetCluster"}
    )
    assert bad.code == "IncompleteSignature"


async def test_stale_date_is_refused_within_window_accepted(api: Api) -> None:
    assert (await api.call("ListClusters", {"RegionId": REGION}, date=utc(-14 * 60))).status == 200
    reply = await api.call("ListClusters", {"RegionId": REGION}, date=utc(-16 * 60))
    assert reply.code == "InvalidTimeStamp.Expired"
    reply = await api.call("ListClusters", {"RegionId": REGION}, date=utc(+16 * 60))
    assert reply.code == "InvalidTimeStamp.Expired"
    reply = await api.call("ListClusters", {"RegionId": REGION}, date="yesterday")
    assert reply.code == "InvalidTimeStamp.Expired"


async def test_reused_nonce_is_refused(api: Api) -> None:
    assert (await api.call("ListClusters", {"RegionId": REGION}, nonce="n-1")).status == 200
    reply = await api.call("ListClusters", {"RegionId": REGION}, nonce="n-1")
    assert (reply.status, reply.code) == (400, "SignatureNonceUsed")


async def test_v1_hmac_sha1_in_query_and_in_form(api: Api) -> None:
    assert (await api.call_v1("ListClusters", {"RegionId": REGION})).status == 200
    assert (await api.call_v1("ListClusters", {"RegionId": REGION}, in_form=True)).status == 200
    reply = await api.call_v1("ListClusters", {"RegionId": REGION}, secret="wrong")
    assert reply.code == "SignatureDoesNotMatch"
    assert "Signature" not in api.state.calls[-1].params
    reply = await api.call_v1("ListClusters", {"RegionId": REGION}, nonce="same")
    reply = await api.call_v1("ListClusters", {"RegionId": REGION}, nonce="same")
    assert reply.code == "SignatureNonceUsed"
    reply = await api.call_v1("ListClusters", {"RegionId": REGION}, timestamp=utc(-3600))
    assert reply.code == "InvalidTimeStamp.Expired"


async def test_acs3_with_form_body(api: Api) -> None:
    reply = await api.call("GetCluster", {"RegionId": REGION}, form={"ClusterId": CLUSTER_ID})
    assert reply.status == 200
    assert reply.body["Cluster"]["ClusterId"] == CLUSTER_ID


async def test_get_method_is_served(api: Api) -> None:
    assert (await api.call("ListClusters", {"RegionId": REGION}, method="GET")).status == 200


STS = {
    "access_keys": [
        {"id": "STS.ok", "secret": "s1", "security_token": "tok-1"},
        {"id": "STS.old", "secret": "s2", "security_token": "tok-2", "expired": True},
    ]
}


async def test_sts_token_must_match(api_factory) -> None:  # type: ignore[no-untyped-def]
    api = await api_factory(STS)
    assert (
        await api.call("ListClusters", {"RegionId": REGION}, key="STS.ok", secret="s1", token="tok-1")
    ).status == 200
    bad = await api.call("ListClusters", {"RegionId": REGION}, key="STS.ok", secret="s1", token="tok-x")
    assert bad.code == "InvalidSecurityToken.Expired"
    missing = await api.call("ListClusters", {"RegionId": REGION}, key="STS.ok", secret="s1")
    assert missing.code == "InvalidSecurityToken.Expired"
    expired = await api.call("ListClusters", {"RegionId": REGION}, key="STS.old", secret="s2", token="tok-2")
    assert expired.code == "InvalidSecurityToken.Expired"
    assert (
        await api.call_v1("ListClusters", {"RegionId": REGION}, key="STS.ok", secret="s1", token="tok-1")
    ).status == 200
    # the demo key is still there
    assert (await api.call("ListClusters", {"RegionId": REGION})).status == 200


async def test_action_routing(api: Api) -> None:
    reply = await api.call("DeleteEverything", {"RegionId": REGION})
    assert (reply.code, reply.status) == ("InvalidAction", 400)
    assert "DeleteEverything" in reply.body["Message"]
    assert (await api.call(None, {"RegionId": REGION})).code == "MissingAction"
    assert (
        await api.call("ListClusters", {"RegionId": REGION}, version="2016-04-08")
    ).code == "InvalidParameter"
    assert (await api.call("ListClusters", {"RegionId": REGION}, version=None)).code == "MissingParameter"


async def test_unknown_path_gets_an_emr_error(api: Api) -> None:
    async with api.client.get("/nope") as resp:
        body = await resp.json(content_type=None)
    assert resp.status == 404
    assert body["Code"] == "ResourceNotFound"


async def test_calls_record_action_params_key_and_outcome(api: Api) -> None:
    await api.call("ListClusters", {"RegionId": REGION})
    await api.call("GetCluster", {"RegionId": REGION, "ClusterId": "c-none"})
    calls = [c.to_json() for c in api.state.calls]
    assert [(c["seq"], c["action"], c["outcome"], c["http_status"]) for c in calls] == [
        (1, "ListClusters", "OK", 200),
        (2, "GetCluster", "ResourceNotFound", 404),
    ]
    assert calls[1]["params"] == {"RegionId": REGION, "ClusterId": "c-none"}
    assert calls[0]["access_key_id"] == ACCESS_KEY_ID
    async with api.client.get("/_emulator/calls", params={"action": "GetCluster"}) as resp:
        listed = (await resp.json())["calls"]
    assert [c["seq"] for c in listed] == [2]


async def test_unicode_digit_parameter_names_are_invalid_parameter(api: Api) -> None:
    # Found by the fuzz test: "¹" passes str.isdigit() but not int(). Such names are plain
    # (unknown) keys, never list positions, so the request fails only for what it lacks.
    reply = await api.call("RunApplicationAction", {"¹": "x", "A.²": "y"})
    assert (reply.status, reply.code) == (400, "MissingParameter")
