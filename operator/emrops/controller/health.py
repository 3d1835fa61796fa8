"""``/healthz`` (liveness) and ``/readyz`` (readiness) on ``--health-port``.

They answer different questions, so they check different things:

- ``/healthz``: is this process alive? 200 while its event loop answers. It looks at nothing
  outside the process on purpose: when the apiserver is down, restarting every operator (what
  the kubelet does on a failing liveness probe) cannot help and only loses work in flight.
- ``/readyz``: can it do its work? 200 once the runtime is open (clients, metrics, supervisor),
  the apiserver answers a ServiceAction list with the operator's own identity, the watch has
  delivered its initial listing (or there is nothing to list), and no shutdown has begun; 503
  with the reasons otherwise. ``helm install --wait``, rollouts and Argo CD wait for it.

Both answer JSON: ``{"status": "ok"}`` or ``{"status": "not ready", "problems": [...]}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

#: Longest a readiness check may take; the kubelet's probe timeout should be above it.
READY_CHECK_SECONDS = 5.0

ReadyCheck = Callable[[], Awaitable[list[str]]]


@dataclass
class HealthState:
    """What the endpoints report; the operator's startup handler sets ``check`` once it can."""

    #: The problems that keep the operator from being ready (empty: ready); None before startup.
    check: ReadyCheck | None = None
    #: With leader election: "standby" (ready, waiting for the Lease) or "leader"; else None.
    role: str | None = None

    async def problems(self) -> list[str]:
        if self.role == "standby":
            return []  # a standby is ready to take over: that is all it is for
        if self.check is None:
            return ["starting: the runtime is not open yet"]
        try:
            async with asyncio.timeout(READY_CHECK_SECONDS):
                return await self.check()
        except TimeoutError:
            return [f"the readiness check took longer than {READY_CHECK_SECONDS:g}s"]


HEALTH_STATE = web.AppKey("health_state", HealthState)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    state = request.app[HEALTH_STATE]
    problems = await state.problems()
    role = {"role": state.role} if state.role else {}
    if problems:
        return web.json_response({"status": "not ready", "problems": problems, **role}, status=503)
    return web.json_response({"status": "ok", **role})


def create_app(state: HealthState) -> web.Application:
    app = web.Application()
    app[HEALTH_STATE] = state
    app.add_routes([web.get("/healthz", _healthz), web.get("/readyz", _readyz)])
    return app


class HealthServer:
    """The endpoints on ``host:port``, started before kopf and stopped after it."""

    def __init__(self, state: HealthState, port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - the kubelet probes the pod IP
        self.state = state
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.state), handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
