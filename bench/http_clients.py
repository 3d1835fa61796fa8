"""CPU per request of the HTTP clients at hand, against the same local TLS server.

Why ``controller.apiserver`` is on aiohttp: each client sends the same merge patch (about 400
bytes) and reads the same JSON answer (about 2 KB, a ServiceAction's size) over TLS, ``N`` requests,
``concurrency`` at a time over as many pooled connections, in a process of its own; the process's
CPU time over the requests (after a warm-up that opens the connections) is divided by ``N``. The
server (aiohttp) runs in another process, so its CPU is not counted.

    .venv/bin/python bench/http_clients.py            # httpx and aiohttp at 1, 4, 12 and 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from emrops.controlplane.certs import generate

N = 3000
PATCH = json.dumps(
    {"metadata": {"resourceVersion": "1"}, "status": {"phase": "Running", "message": "m" * 300}}
)
ANSWER = json.dumps(
    {
        "apiVersion": "emrops.io/v1alpha1",
        "kind": "ServiceAction",
        "metadata": {"name": "a" * 20, "namespace": "ns", "uid": "u" * 36, "resourceVersion": "12345"},
        "spec": {f"field{i}": "v" * 40 for i in range(15)},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": f"T{i}", "status": "True", "reason": "R" * 20, "message": "m" * 120}
                for i in range(4)
            ],
            "message": "m" * 200,
        },
    }
).encode()


def serve(cert: str, key: str, port_file: str) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def main() -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return int(runner.addresses[0][1])

    loop = asyncio.new_event_loop()
    port = loop.run_until_complete(main())
    Path(port_file).write_text(str(port))
    loop.run_forever()


async def measure(client: str, url: str, ca: str, concurrency: int) -> float:
    """CPU seconds per request of ``client`` sending ``N`` patches, ``concurrency`` at a time."""
    context = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": "Bearer t", "Content-Type": "application/merge-patch+json"}
    body = PATCH.encode()
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, verify=context, limits=limits) as http:

            async def one(i: int) -> None:
                response = await http.request("PATCH", f"/x/{i}/status", content=body, headers=headers)
                json.loads(response.content)

            return await _timed(one, concurrency)
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            async with session.request(
                "PATCH", f"{url}/x/{i}/status", data=body, headers=headers
            ) as response:
                json.loads(await response.read())

        return await _timed(one, concurrency)


async def _timed(send: Callable[[int], Awaitable[None]], concurrency: int) -> float:
    await asyncio.gather(*(send(i) for i in range(concurrency)))  # opens the connections
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(N):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await send(queue.get_nowait())

    began = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - began) / N


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", nargs=3, metavar=("CERT", "KEY", "PORT_FILE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--client", nargs=4, metavar=("NAME", "URL", "CA", "CONCURRENCY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if args.client:
        name, url, ca, concurrency = args.client
        print(asyncio.run(measure(name, url, ca, int(concurrency))))
        return 0
    with tempfile.TemporaryDirectory(prefix="emrops-http-bench-") as work:
        certs = generate(Path(work))
        port_file = Path(work) / "port"
        server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(certs.serving_cert),
                str(certs.serving_key),
                str(port_file),
            ]
        )
        try:
            while not port_file.exists():
                time.sleep(0.05)
            url = f"https://127.0.0.1:{port_file.read_text()}"
            print(f"{N} requests per client and concurrency, CPU per request:")
            print("| concurrency | httpx | aiohttp | ratio |")
            print("|---|---|---|---|")
            for concurrency in (1, 4, 12, 32):
                per = {}
                for name in ("httpx", "aiohttp"):
                    command = [
                        sys.executable,
                        __file__,
                        "--client",
                        name,
                        url,
                        str(certs.serving_ca),
                        str(concurrency),
                    ]
                    per[name] = float(
                        subprocess.run(command, check=True, capture_output=True, text=True).stdout
                    )
                slow, fast = per["httpx"] * 1000, per["aiohttp"] * 1000
                print(f"| {concurrency} | {slow:.2f} ms | {fast:.2f} ms | {slow / fast:.1f} |")
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
