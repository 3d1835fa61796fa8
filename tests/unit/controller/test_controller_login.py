"""kopf's own session to the apiserver is built on a bounded pool (kopf's default is unbounded)."""

from __future__ import annotations

import kopf

from emrops.controller.login import KOPF_SPARE_CONNECTIONS, kopf_session, watch_streams


def test_one_stream_per_watched_namespace_and_resource() -> None:
    assert watch_streams((), peering=False) == 1
    assert watch_streams(("a", "b", "c"), peering=False) == 3
    assert watch_streams(("a", "b"), peering=True) == 4


async def test_kopfs_session_has_room_for_its_streams_and_a_few_requests_only() -> None:
    info = kopf.ConnectionInfo(server="https://127.0.0.1:6443", token="t", default_namespace="ns")
    context = kopf_session(info, streams=3)
    try:
        assert context.aiohttp_session.connector is not None
        assert context.aiohttp_session.connector.limit == 3 + KOPF_SPARE_CONNECTIONS
        assert context.aiohttp_session.headers["Authorization"] == "Bearer t"
        assert (context.server, context.default_namespace) == ("https://127.0.0.1:6443", "ns")
    finally:
        await context.aiohttp_session.close()
