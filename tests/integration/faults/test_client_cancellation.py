"""The EMR client survives callers that give up: cancelled calls must not wedge its connection pool.

The operator wraps every EMR call in ``asyncio.timeout``; under a burst (1,000 ServiceActions with
rate limiting off) many calls wait for one of the client's 20 connections and some deadlines fire
while they wait or while they are in flight. Found by the benchmark: after such a burst the
operator's client answered every later call with PoolTimeout, although no connection to EMR was
open any more, and 155 of 1,000 objects were never submitted (see docs/performance.md). The
client now waits for a connection slot of its own, outside httpx's pool.

Here a slow EMR (2 s latency on every call) and callers that give up after 0.5 s reproduce it
with 100 calls; afterwards, with EMR fast again, ordinary calls must succeed.
"""

from __future__ import annotations

import asyncio

import pytest

from emrops.emr.client import EmrClient
from emrops.emr.credentials import StaticCredentials
from emrops.emr.models import GetClusterRequest
from emrops.emulator.app import STATE
from emrops.emulator.faults import FaultSpec
from emrops.emulator.server import EmulatorServer
from emrops.emulator.settings import EmulatorSettings
from emrops.emulator.state import EmulatorState

pytestmark = pytest.mark.integration

REQUEST = GetClusterRequest(region_id="cn-hangzhou", cluster_id="c-8a3f2e1d9b7c6a50")
CREDS = StaticCredentials("emrops-demo", "emrops-demo-secret")


async def _call(client: EmrClient, seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            await client.get_cluster(REQUEST, credentials=CREDS)
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # any emrops error is an outcome here, not a test crash
        return type(exc).__name__
    return "ok"


async def test_cancelled_calls_do_not_wedge_the_pool() -> None:
    server = EmulatorServer(EmulatorSettings(time_scale=0.01))
    await server.start()
    state: EmulatorState = server.app[STATE]
    try:
        async with EmrClient(endpoint=server.url) as client:
            # The wedge depends on where each cancellation lands; three rounds make it show.
            for _ in range(3):
                state.faults.add(FaultSpec(action="GetCluster", latency=2.0))
                outcomes = await asyncio.gather(*(_call(client, 0.5) for _ in range(100)))
                assert set(outcomes) == {"timeout"}, outcomes
                state.faults.clear()
                await asyncio.sleep(2.5)  # the emulator finishes the abandoned requests
                after = await asyncio.gather(*(_call(client, 10.0) for _ in range(10)))
                assert after == ["ok"] * 10, after
    finally:
        await server.stop()
