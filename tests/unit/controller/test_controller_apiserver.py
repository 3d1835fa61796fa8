"""The operator's own apiserver client: credentials, a rotated token, errors, the bounded pool."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.abc
import ssl
import sys
from collections.abc import AsyncIterator

import kopf
import pytest
from loopback_apiserver import Seen, loopback, status_error

from emrops.controller.apiserver import MERGE_PATCH, ApiClient, ApiError, priority
from emrops.controller.kube import KubeApi


async def test_sends_the_token_and_json_and_decodes_the_answer() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        return 200, {"echo": seen.body}

    async with loopback(answer) as server:
        api = ApiClient(server.info)
        try:
            got = await api.request("PATCH", "/x", body={"a": 1}, content_type=MERGE_PATCH)
        finally:
            await api.aclose()
    assert got == {"echo": {"a": 1}}
    (seen,) = server.seen
    assert seen.headers["Authorization"] == "Bearer token-1"
    assert seen.headers["Content-Type"] == MERGE_PATCH
    assert seen.headers["User-Agent"].startswith("emrops/")


async def test_a_rotated_token_is_read_again_on_401_and_the_request_sent_once_more() -> None:
    """Projected ServiceAccount tokens are replaced on disk while the process runs."""
    tokens = iter(["old", "new"])

    async def answer(seen: Seen) -> tuple[int, object]:
        if seen.headers["Authorization"] != "Bearer new":
            return status_error(401, "Unauthorized")
        return 200, {"ok": True}

    async with loopback(answer) as server:
        api = ApiClient(lambda: server.info(next(tokens)))
        try:
            assert await api.request("GET", "/x") == {"ok": True}
        finally:
            await api.aclose()
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer old", "Bearer new"]


async def test_errors_carry_the_status_and_the_apiservers_message_never_the_token() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        return status_error(422, "spec.x: Invalid value")

    async with loopback(answer) as server:
        api = ApiClient(lambda: server.info("s3cr3t-token"))
        try:
            with pytest.raises(ApiError) as info:
                await api.request("GET", "/x")
        finally:
            await api.aclose()
    assert info.value.status == 422
    assert "spec.x: Invalid value" in str(info.value)
    assert "s3cr3t-token" not in str(info.value)


async def test_no_more_requests_in_flight_than_the_pool_allows() -> None:
    """A burst of workers shares a few connections instead of opening one each."""
    release = asyncio.Event()

    async def answer(seen: Seen) -> tuple[int, object]:
        await release.wait()
        return 200, {}

    async with loopback(answer) as server:
        api = ApiClient(server.info, max_connections=3)
        try:
            calls = [asyncio.create_task(api.request("GET", f"/x/{i}")) for i in range(20)]
            await asyncio.sleep(0.3)  # time for every request the pool lets through to arrive
            assert server.in_flight == 3
            release.set()
            await asyncio.gather(*calls)
        finally:
            await api.aclose()
    assert server.most_in_flight == 3
    assert len(server.seen) == 20


async def test_status_writes_carry_the_resource_version_and_409_is_a_conflict() -> None:
    """The exactly-once lock: a merge patch on /status conditioned on the version decided from."""
    from emrops.controller.kube import Conflict

    async def answer(seen: Seen) -> tuple[int, object]:
        if seen.body["metadata"]["resourceVersion"] != "7":
            return status_error(409, "the object has been modified")
        return 200, {
            "metadata": {"name": "a", "managedFields": [{"manager": "x"}]},
            "status": seen.body["status"],
        }

    async with loopback(answer) as server:
        api = ApiClient(server.info)
        store = KubeApi(api)
        try:
            written = await store.patch_status("ns", "a", {"phase": "Submitting"}, "7")
            with pytest.raises(Conflict):
                await store.patch_status("ns", "a", {"phase": "Submitting"}, "6")
        finally:
            await api.aclose()
    assert server.seen[0].method == "PATCH"
    assert server.seen[0].path == "/apis/emrops.io/v1alpha1/namespaces/ns/serviceactions/a/status"
    assert server.seen[0].headers["Content-Type"] == MERGE_PATCH
    assert written == {"metadata": {"name": "a"}, "status": {"phase": "Submitting"}}  # no managedFields


def test_a_missing_login_is_a_login_error() -> None:
    def nothing() -> kopf.ConnectionInfo:
        raise kopf.LoginError("no credentials")

    with pytest.raises(kopf.LoginError):
        ApiClient(nothing)


async def test_a_request_in_priority_goes_ahead_of_a_full_ordinary_lane() -> None:
    """A submission's writes are not queued behind other objects' while its intent's clock runs."""
    release = asyncio.Event()

    async def answer(seen: Seen) -> tuple[int, object]:
        if seen.path.startswith("/slow"):
            await release.wait()
        return 200, {}

    async with loopback(answer) as server:
        api = ApiClient(server.info, max_connections=2, priority_connections=1)
        try:
            ordinary = [asyncio.create_task(api.request("GET", f"/slow/{i}")) for i in range(10)]
            await asyncio.sleep(0.3)
            with priority():
                assert await asyncio.wait_for(api.request("GET", "/urgent"), 5) == {}
            assert server.most_in_flight == 3  # two ordinary ones, and the urgent one beside them
            release.set()
            await asyncio.gather(*ordinary)
        finally:
            await api.aclose()


async def test_a_request_searches_for_no_module() -> None:
    """Once warm, a request imports nothing: a failed import is not cached, so a library that
    tries one per request (httpcore's ``import sniffio`` without sniffio installed: several per
    request, 11% of the operator's CPU in a burst) searches sys.path every time."""
    asked: list[str] = []

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: object, target: object = None) -> None:
            asked.append(fullname)

    async def answer(seen: Seen) -> tuple[int, object]:
        return 200, {"ok": True}

    async with loopback(answer) as server:
        api = ApiClient(server.info)
        try:
            await api.request("GET", "/warm")
            sys.meta_path.insert(0, Recorder())
            try:
                for _ in range(3):
                    await api.request("PATCH", "/x", body={"a": 1}, content_type=MERGE_PATCH)
            finally:
                sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, Recorder)]
        finally:
            await api.aclose()
    assert asked == []


async def test_no_answer_is_an_error_of_status_0_that_names_the_request_never_the_token() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        await asyncio.sleep(1)
        return 200, {}

    async with loopback(answer) as server:
        api = ApiClient(lambda: server.info("s3cr3t-token"))
        try:
            with pytest.raises(ApiError) as late:
                await api.request("GET", "/slow", request_timeout=0.2)
        finally:
            await api.aclose()
        url = server.url
    assert late.value.status == 0
    assert "GET /slow" in str(late.value) and "Timeout" in str(late.value)
    refused = ApiClient(lambda: kopf.ConnectionInfo(server=url, token="s3cr3t-token"))
    try:
        with pytest.raises(ApiError) as down:
            await refused.request("GET", "/gone")  # the server has stopped: connection refused
    finally:
        await refused.aclose()
    assert down.value.status == 0
    assert "GET /gone" in str(down.value)
    assert "s3cr3t-token" not in str(late.value) + str(down.value)
    with pytest.raises(ApiError, match="closed"):
        await refused.request("GET", "/after-close")


async def test_a_request_without_a_timeout_of_its_own_has_the_clients() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        await asyncio.sleep(1)
        return 200, {}

    async with loopback(answer) as server:
        api = ApiClient(server.info, timeout=0.2)
        try:
            with pytest.raises(ApiError) as late:
                await asyncio.wait_for(api.request("GET", "/slow"), 0.8)  # TimeoutError here: no timeout
        finally:
            await api.aclose()
    assert late.value.status == 0


@contextlib.asynccontextmanager
async def raw_server(reply: bytes) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that answers any request with ``reply`` as is; yields its URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def answered(reply: bytes, *, token: str = "t", method: str = "GET") -> ApiError:  # noqa: S107
    """The ApiError a request answered with ``reply`` raises."""
    async with raw_server(reply) as url:
        api = ApiClient(lambda: kopf.ConnectionInfo(server=url, token=token))
        try:
            with pytest.raises(ApiError) as failed:
                await api.request(method, "/x", body={} if method != "GET" else None)
        finally:
            await api.aclose()
    return failed.value


async def test_a_proxy_password_is_never_in_an_error() -> None:
    reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(reply) as proxy:
        proxy_url = proxy.replace("http://", "http://user:pr0xypass@")
        info = kopf.ConnectionInfo(server="https://apiserver.invalid", token="t", proxy_url=proxy_url)
        api = ApiClient(lambda: info)
        try:
            with pytest.raises(ApiError) as failed:
                await api.request("GET", "/api")
        finally:
            await api.aclose()
    assert "pr0xypass" not in str(failed.value)


async def test_a_header_the_http_library_refuses_is_an_api_error() -> None:
    async def answer(seen: Seen) -> tuple[int, object]:
        return 200, {}

    async with loopback(answer) as server:
        api = ApiClient(lambda: server.info("token\n"))
        try:
            with pytest.raises(ApiError):
                await api.request("GET", "/x")
        finally:
            await api.aclose()


def test_a_bad_certificate_authority_fails_when_the_client_is_made() -> None:
    """At startup, not as a request error at every request (a leader would stay standby forever)."""
    with pytest.raises(ssl.SSLError):
        ApiClient(
            lambda: kopf.ConnectionInfo(server="https://x.invalid", token="t", ca_data=b"bm90IGEgY2VydA==")
        )


async def test_an_answer_that_is_not_json_is_an_api_error() -> None:
    failed = await answered(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>")
    assert failed.status == 200 and "not JSON" in str(failed)


async def test_a_redirect_is_not_followed() -> None:
    reply = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n"
    failed = await answered(reply, method="PATCH")
    assert failed.status == 307


async def test_an_error_keeps_no_exception_that_holds_the_request_headers() -> None:
    failed = await answered(b"HTTX/9 nonsense\r\n\r\n", token="s3cr3t-token")
    assert failed.status == 0
    assert failed.__context__ is None and failed.__cause__ is None
    assert "s3cr3t-token" not in str(failed)
