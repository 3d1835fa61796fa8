"""A TLS front for the EMR emulator, so the operator pod reaches it the way it reaches EMR.

The operator (and the chart's schema) accept plain http only for a loopback endpoint: keys and
STS tokens must not cross a network in clear. A pod's loopback is its own, so the pod reaches
the emulator on the node's address, over https, trusting a CA the test makes and mounts. The
emulator speaks plain http; this proxy terminates TLS on the node's address and passes the
bytes through unchanged to the emulator on 127.0.0.1 (the request's signature covers the Host
header as the operator sent it, which the proxy does not touch).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from harness.emulator import Emulator as EmulatorProcess


@dataclass(frozen=True)
class Emulator:
    """The emulator as the e2e tests see it."""

    handle: EmulatorProcess  # on 127.0.0.1, plain http: the tests' inspection calls
    endpoint: str  # what the operator is given: https on the node's address
    ca_file: Path  # the CA the operator pod trusts for it


class TlsProxy:
    """Terminates TLS on ``host:port`` and forwards each connection to ``target`` (host, port)."""

    def __init__(self, host: str, port: int, target: tuple[str, int], cert: Path, key: Path) -> None:
        self.host, self.port, self.target = host, port, target
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(str(cert), str(key))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, self.port, ssl=self._context), self._loop
        )
        self._server = started.result(timeout=10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Connections still open (the operator's keep-alive ones) end here, before the loop does.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, upstream_writer),
            _pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, ssl.SSLError):
            writer.close()
