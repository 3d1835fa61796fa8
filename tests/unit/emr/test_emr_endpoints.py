"""Endpoint resolution: the SDK's map for public endpoints, VPC for every region, overrides."""

from __future__ import annotations

import pytest
from yarl import URL

from emrops.emr.endpoints import CENTRAL_REGIONS, is_loopback, parse_endpoint_override, resolve_endpoint


@pytest.mark.parametrize(
    ("region", "network", "expected"),
    [
        ("cn-hangzhou", "public", "https://emr.aliyuncs.com/"),
        ("cn-beijing", "public", "https://emr.aliyuncs.com/"),
        ("cn-shanghai", "public", "https://emr.aliyuncs.com/"),
        ("cn-shenzhen", "public", "https://emr.aliyuncs.com/"),
        ("ap-southeast-1", "public", "https://emr.aliyuncs.com/"),
        ("us-west-1", "public", "https://emr.aliyuncs.com/"),
        ("cn-shanghai-finance-1", "public", "https://emr.aliyuncs.com/"),
        ("cn-north-2-gov-1", "public", "https://emr.aliyuncs.com/"),
        ("us-east-1", "public", "https://emr.us-east-1.aliyuncs.com/"),
        ("eu-central-1", "public", "https://emr.eu-central-1.aliyuncs.com/"),
        ("cn-zhangjiakou", "public", "https://emr.cn-zhangjiakou.aliyuncs.com/"),
        ("cn-guangzhou", "public", "https://emr.cn-guangzhou.aliyuncs.com/"),
        ("cn-hangzhou", "vpc", "https://emr-vpc.cn-hangzhou.aliyuncs.com/"),
        ("cn-guangzhou", "vpc", "https://emr-vpc.cn-guangzhou.aliyuncs.com/"),
        ("ap-southeast-1", "vpc", "https://emr-vpc.ap-southeast-1.aliyuncs.com/"),
    ],
)
def test_table(region: str, network: str, expected: str) -> None:
    assert str(resolve_endpoint(region, network=network)) == expected  # type: ignore[arg-type]


def _sdk_client(region: str) -> object:
    from alibabacloud_emr20210320.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(region_id=region, access_key_id="a", access_key_secret="b"))


def test_public_endpoints_match_the_sdk_map() -> None:
    sdk = _sdk_client("cn-hangzhou")
    endpoint_map: dict[str, str] = sdk._endpoint_map  # type: ignore[attr-defined]
    assert {region for region, host in endpoint_map.items() if host == "emr.aliyuncs.com"} == CENTRAL_REGIONS
    for region, host in endpoint_map.items():
        assert resolve_endpoint(region).host == host, region


@pytest.mark.parametrize("region", ["cn-guangzhou", "cn-nanjing", "ap-south-1"])
def test_unmapped_regions_follow_the_sdk_rule(region: str) -> None:
    assert resolve_endpoint(region).host == _sdk_client(region)._endpoint  # type: ignore[attr-defined]


def test_override_wins_for_every_region_and_network() -> None:
    url = resolve_endpoint("us-east-1", network="vpc", override="emr-vpc.cn-hangzhou.aliyuncs.com")
    assert str(url) == "https://emr-vpc.cn-hangzhou.aliyuncs.com/"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("http://127.0.0.1:8090", "http://127.0.0.1:8090/"),
        ("http://localhost:8090/", "http://localhost:8090/"),
        ("http://[::1]:8090", "http://[::1]:8090/"),
        ("http://127.1.2.3", "http://127.1.2.3/"),
        ("emr.example.internal:8443", "https://emr.example.internal:8443/"),
        ("https://emr.aliyuncs.com", "https://emr.aliyuncs.com/"),
        ("https://EMR.AliyunCS.com:8443", "https://emr.aliyuncs.com:8443/"),
    ],
)
def test_valid_overrides(override: str, expected: str) -> None:
    assert parse_endpoint_override(override) == URL(expected)


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ("http://emr.aliyuncs.com", "loopback"),
        ("http://10.1.2.3:8090", "loopback"),
        ("http://127.0.0.1.nip.io", "loopback"),
        ("ftp://127.0.0.1", "scheme"),
        ("https://emr.aliyuncs.com/v2", "path"),
        ("https://user:pw@emr.aliyuncs.com", "user info"),
        ("https://:pw@emr.aliyuncs.com", "user info"),
        ("https://emr.aliyuncs.com/?a=b", "query"),
        ("", "empty"),
        ("https://emr.aliyuncs.com\r\nX-Injected: 1", "control characters"),
        ("https://emr aliyuncs.com", "spaces"),
        ("https://emr_aliyuncs.com", "not a host name"),
        ("https://emr.aliyuncs.com:0", "port 0"),
        ("https://emr.aliyuncs.com:70000", "not a valid URL"),
    ],
)
def test_refused_overrides_name_the_option(override: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="emr-endpoint") as info:
        parse_endpoint_override(override, option="--emr-endpoint")
    assert complaint in str(info.value)


@pytest.mark.parametrize(
    "region", ["", "cn-hangzhou.evil.com", "evil.com/x", "cn-hangzhou#", "CN-HANGZHOU", "a b", "-cn", "cn--x"]
)
def test_region_cannot_smuggle_a_host(region: str) -> None:
    with pytest.raises(ValueError, match="region"):
        resolve_endpoint(region)


def test_unknown_network() -> None:
    with pytest.raises(ValueError, match="network"):
        resolve_endpoint("cn-hangzhou", network="classic")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("a.b", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
