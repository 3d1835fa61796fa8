"""``EmulatorServer``: the emulator on a real socket, started and stopped from asyncio code.

Shaped like aiohttp's ``examples/fake_server.py``::

    server = EmulatorServer(EmulatorSettings(time_scale=0.01))
    await server.start()          # port 0 picks a free port
    ...  # point a client at server.url
    await server.stop()

It is also an async context manager.
"""

from __future__ import annotations

from types import TracebackType

from aiohttp import web

from emrops.emulator.app import STATE, create_app
from emrops.emulator.settings import EmulatorSettings
from emrops.emulator.state import EmulatorState


class EmulatorServer:
    def __init__(
        self, settings: EmulatorSettings | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.settings = settings or EmulatorSettings()
        self.host = host
        self.port = port
        self.app = create_app(self.settings)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``, once started."""
        if self._runner is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """``host:port`` as the official SDK's ``Config.endpoint`` wants it."""
        return self.url.removeprefix("http://")

    @property
    def state(self) -> EmulatorState:
        return self.app[STATE]

    async def start(self) -> int:
        """Listen and return the port."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
            break
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
