"""Which host serves EMR for a region: pure functions, no I/O.

Resolution order:

1. An explicit ``override`` (operator configuration ``--emr-endpoint``) wins for every region. It is
   ``host[:port]`` or ``scheme://host[:port]``; the scheme defaults to ``https`` and plain ``http``
   is refused unless the host is a loopback address (the emulator), so credentials and STS tokens
   never travel unencrypted over a network.
2. ``network="vpc"``: ``emr-vpc.<region>.aliyuncs.com`` for every region. This deliberately differs
   from the official Python SDK 3.4.0, whose endpoint map wins even when ``network="vpc"`` (so
   cn-hangzhou + vpc would still go to the public central ``emr.aliyuncs.com``). Alibaba's endpoint
   documentation lists a VPC endpoint for every region, cn-hangzhou included, and an operator that
   asks for VPC inside a VPC-only cluster must not leave the VPC.
3. ``network="public"``: the regions the SDK sends to the central endpoint use ``emr.aliyuncs.com``;
   every other region uses ``emr.<region>.aliyuncs.com`` (which is also what the SDK's map lists
   for the non-central regions it names).

The region id comes from a ServiceAction spec, i.e. from users: it is checked against the shape of
real region ids so that it can never smuggle another host name into the URL.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from yarl import URL

Network = Literal["public", "vpc"]

CENTRAL_HOST = "emr.aliyuncs.com"

#: Regions the official SDK (alibabacloud-emr20210320 3.4.0) sends to the central endpoint.
CENTRAL_REGIONS: frozenset[str] = frozenset(
    {
        # Public regions.
        "cn-hangzhou",
        "cn-beijing",
        "cn-shanghai",
        "cn-shenzhen",
        "ap-southeast-1",
        "us-west-1",
        # Finance and government clouds.
        "cn-shanghai-finance-1",
        "cn-shenzhen-finance-1",
        "cn-beijing-finance-1",
        "cn-beijing-finance-pop",
        "cn-hangzhou-finance",
        "cn-hongkong-finance-pop",
        "cn-north-2-gov-1",
        "cn-beijing-gov-1",
        # Internal, test and edge regions the SDK lists as well.
        "ap-northeast-2-pop",
        "cn-beijing-nu16-b01",
        "cn-edge-1",
        "cn-fujian",
        "cn-haidian-cm12-c01",
        "cn-hangzhou-bj-b01",
        "cn-hangzhou-internal-prod-1",
        "cn-hangzhou-internal-test-1",
        "cn-hangzhou-internal-test-2",
        "cn-hangzhou-internal-test-3",
        "cn-hangzhou-test-306",
        "cn-huhehaote-nebula-1",
        "cn-qingdao-nebula",
        "cn-shanghai-et15-b01",
        "cn-shanghai-et2-b01",
        "cn-shanghai-inner",
        "cn-shanghai-internal-test-1",
        "cn-shenzhen-inner",
        "cn-shenzhen-st4-d01",
        "cn-shenzhen-su18-b01",
        "cn-wuhan",
        "cn-yushanfang",
        "cn-zhangbei",
        "cn-zhangbei-na61-b01",
        "cn-zhangjiakou-na62-a01",
        "cn-zhengzhou-nebula-1",
        "eu-west-1-oxs",
        "rus-west-1-pop",
    }
)

_REGION_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_LOOPBACK_NAMES = frozenset({"localhost"})
#: A DNS name: letters, digits, hyphens and dots.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def resolve_endpoint(region_id: str, *, network: Network = "public", override: str | None = None) -> URL:
    """The base URL (``scheme://host[:port]/``) to send ``region_id``'s requests to.

    Raises ``ValueError`` for a malformed region id, an unknown network or an unusable override.
    """
    if override is not None:
        return parse_endpoint_override(override)
    if not _REGION_ID.fullmatch(region_id):
        raise ValueError(f"region id {region_id!r} is not a valid Alibaba Cloud region id")
    if network == "vpc":
        host = f"emr-vpc.{region_id}.aliyuncs.com"
    elif network == "public":
        host = CENTRAL_HOST if region_id in CENTRAL_REGIONS else f"emr.{region_id}.aliyuncs.com"
    else:
        raise ValueError(f"network must be 'public' or 'vpc', not {network!r}")
    return URL.build(scheme="https", host=host, path="/")


def parse_endpoint_override(value: str, *, option: str = "endpoint") -> URL:
    """Validate an endpoint override; errors name ``option`` (the setting the user wrote)."""
    text = value.strip()
    if not text:
        raise ValueError(f"{option}: must not be empty")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ValueError(f"{option}: {value!r} contains spaces or control characters")
    if "://" not in text:
        text = f"https://{text}"
    try:
        url = URL(text)
        port = url.explicit_port  # an out-of-range port is only noticed when asked for
    except ValueError as exc:
        raise ValueError(f"{option}: {value!r} is not a valid URL ({exc})") from None
    if port == 0:
        raise ValueError(f"{option}: port 0 is not a port to connect to")
    if url.scheme not in ("http", "https"):
        raise ValueError(f"{option}: scheme must be https (or http for a loopback host), not {url.scheme!r}")
    host = url.raw_host  # an international name in its ASCII (punycode) form
    if not host:
        raise ValueError(f"{option}: {value!r} names no host")
    if not _HOST.fullmatch(host) and not _is_ip(host):
        # The host goes into the signed Host header: nothing but a DNS name or an IP address.
        raise ValueError(f"{option}: {url.host!r} is not a host name or IP address")
    if url.path not in ("", "/") or url.query_string or url.fragment or "@" in (url.raw_authority or ""):
        raise ValueError(f"{option}: give only scheme://host[:port], not a path, query or user info")
    if url.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"{option}: plain http is only allowed for a loopback host (127.0.0.1, ::1, localhost), "
            f"not {url.host!r}; use https"
        )
    return URL.build(scheme=url.scheme, host=host, port=port, path="/")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
