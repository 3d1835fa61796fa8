"""What the operator's process loads: no second HTTP stack, no generated Kubernetes client.

Each of these cost the operator memory or CPU for nothing (docs/performance.md): httpx and
httpcore (the EMR client's HTTP stack before it moved to aiohttp, which kopf loads anyway),
kubernetes_asyncio (kopf imports it whenever it is installed), and the Alibaba credentials
library with its scheduler thread (imported only when the default chain is really asked).
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Top-level packages the running operator must not import.
UNWANTED = {
    "httpx",
    "httpcore",
    "anyio",
    "kubernetes_asyncio",
    "kubernetes",
    "alibabacloud_credentials",
    "apscheduler",
}

PROBE = """
import json, sys
import emrops.cli, emrops.controller.app, emrops.controller.cli, emrops.controller.handlers
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_operator_loads_no_second_http_stack_or_kubernetes_client() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert "aiohttp" in loaded and "kopf" in loaded, "the probe imported the operator"
    assert loaded & UNWANTED == set()
