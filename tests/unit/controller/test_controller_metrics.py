"""What an SRE watches on /metrics: the process (RSS, CPU, fds), the build, the Events' fate."""

from __future__ import annotations

from prometheus_client import generate_latest

from emrops import __version__
from emrops.controller.metrics import Metrics


def test_process_figures_and_build_info_are_exposed() -> None:
    metrics = Metrics()
    metrics.events.labels(outcome="aggregated").inc()
    text = generate_latest(metrics.registry).decode()
    samples = {line.split(" ")[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if line[:1] != "#"}
    rss = float(samples["process_resident_memory_bytes"])
    assert 1 << 20 < rss < 1 << 34
    assert float(samples["process_open_fds"]) >= 3
    assert "process_cpu_seconds_total" in samples
    build = next(name for name in samples if name.startswith("emrops_build_info{"))
    assert f'version="{__version__}"' in build
    assert samples[build] == "1.0"
    assert samples['emrops_events_total{outcome="aggregated"}'] == "1.0"
