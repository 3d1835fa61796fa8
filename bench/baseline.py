"""The baseline: the official Alibaba Cloud SDK sending RunApplicationAction straight to the emulator.

This is what a script without emrops would do: ``alibabacloud_emr20210320``'s async client, one
call per action, no Kubernetes in between. The benchmark runs the same calls (same clusters, same
targets) so the ratio emrops / direct shows what the operator's bookkeeping costs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alibabacloud_emr20210320.client import Client as EmrSdkClient
from alibabacloud_emr20210320.models import RunApplicationActionRequest
from alibabacloud_tea_openapi.utils_models import Config


@dataclass(frozen=True)
class Target:
    """What one action restarts: one component instance on one cluster."""

    cluster_id: str
    application: str
    component: str
    node_id: str
    description: str
    region_id: str = "cn-hangzhou"

    def sdk_request(self) -> RunApplicationActionRequest:
        return RunApplicationActionRequest().from_map(
            {
                "RegionId": self.region_id,
                "ClusterId": self.cluster_id,
                "ActionName": "restart",
                "ComponentInstanceSelector": {
                    "RunActionScope": "COMPONENT_INSTANCE",
                    "ComponentInstances": [
                        {
                            "ApplicationName": self.application,
                            "ComponentName": self.component,
                            "NodeId": self.node_id,
                        }
                    ],
                },
                "Description": self.description,
            }
        )

    def spec(self) -> dict[str, Any]:
        """The same action as a ServiceAction spec."""
        return {
            "regionId": self.region_id,
            "clusterId": self.cluster_id,
            "actionName": "restart",
            "componentInstanceSelector": {
                "runActionScope": "COMPONENT_INSTANCE",
                "componentInstances": [
                    {
                        "applicationName": self.application,
                        "componentName": self.component,
                        "nodeId": self.node_id,
                    }
                ],
            },
            "description": self.description,
        }


def sdk_client(endpoint_url: str, access_key_id: str, access_key_secret: str) -> EmrSdkClient:
    host = endpoint_url.split("://", 1)[-1].rstrip("/")
    config = Config(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        endpoint=host,
        protocol="http",
        region_id="cn-hangzhou",
    )
    return EmrSdkClient(config)


async def sequential(client: EmrSdkClient, targets: Sequence[Target]) -> list[float]:
    """Latency (seconds) of each call, one after the other."""
    latencies = []
    for target in targets:
        began = time.perf_counter()
        response = await client.run_application_action_async(target.sdk_request())
        latencies.append(time.perf_counter() - began)
        assert response.body.operation_id, response.body
    return latencies


async def burst(
    client: EmrSdkClient, targets: Sequence[Target], *, concurrency: int = 64
) -> tuple[float, int]:
    """All calls at once (bounded concurrency); returns (seconds until all answered, failures)."""
    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(target: Target) -> None:
        nonlocal failures
        async with semaphore:
            try:
                await client.run_application_action_async(target.sdk_request())
            except Exception:  # the SDK raises its own tree; a failure is counted, not fatal
                failures += 1

    began = time.perf_counter()
    await asyncio.gather(*(one(t) for t in targets))
    return time.perf_counter() - began, failures
