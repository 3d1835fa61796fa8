"""A tiny HTTP server on 127.0.0.1 that answers like the apiserver does for the paths a test gives it.

The client under test (``controller.apiserver.ApiClient``) is real, and so is its transport: only
the server is a stand-in, so tests see the exact requests (method, path, headers, JSON body).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Answer = Callable[[Seen], Awaitable[tuple[int, Any]]]


@dataclass
class Loopback:
    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""

    def info(self, token: str = "token-1") -> kopf.ConnectionInfo:  # noqa: S107 - a test token
        return kopf.ConnectionInfo(server=self.url, token=token)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        seen = Seen(request.method, request.path_qs, dict(request.headers), json.loads(raw) if raw else None)
        self.seen.append(seen)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            status, payload = await self.answer(seen)
        finally:
            self.in_flight -= 1
        return web.json_response(payload, status=status)


@asynccontextmanager
async def loopback(answer: Answer) -> AsyncIterator[Loopback]:
    server = Loopback(answer)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def status_error(code: int, message: str) -> tuple[int, dict[str, Any]]:
    """A ``Status`` body as the apiserver sends it with an error code."""
    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


async def settle() -> None:
    """Let the event loop run queued callbacks (a background poster's next request)."""
    for _ in range(20):
        await asyncio.sleep(0.01)
