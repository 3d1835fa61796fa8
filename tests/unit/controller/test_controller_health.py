"""The health endpoints: liveness depends on nothing outside the process; readiness on the check."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from emrops.controller import health
from emrops.controller.health import HealthState, create_app


async def get(state: HealthState, path: str) -> tuple[int, dict[str, object]]:
    async with TestClient(TestServer(create_app(state))) as client:
        response = await client.get(path)
        return response.status, await response.json()


async def test_liveness_answers_before_startup_and_whatever_readiness_says() -> None:
    async def broken() -> list[str]:
        return ["the apiserver did not list ServiceActions: ConnectionError"]

    assert await get(HealthState(), "/healthz") == (200, {"status": "ok"})
    assert await get(HealthState(check=broken), "/healthz") == (200, {"status": "ok"})


async def test_not_ready_before_the_runtime_is_open() -> None:
    status, body = await get(HealthState(), "/readyz")
    assert status == 503 and body["problems"] == ["starting: the runtime is not open yet"]


async def test_ready_follows_the_check() -> None:
    problems: list[str] = ["the watch has not delivered its initial listing yet"]

    async def check() -> list[str]:
        return list(problems)

    state = HealthState(check=check)
    assert await get(state, "/readyz") == (503, {"status": "not ready", "problems": problems})
    problems.clear()
    assert await get(state, "/readyz") == (200, {"status": "ok"})


async def test_a_hanging_check_is_not_ready_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "READY_CHECK_SECONDS", 0.05)

    async def hangs() -> list[str]:
        await asyncio.sleep(3600)
        return []

    status, body = await asyncio.wait_for(get(HealthState(check=hangs), "/readyz"), 5)
    assert status == 503 and "longer than" in str(body["problems"])
