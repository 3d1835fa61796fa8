"""Render a ``bench/results/*.json`` file as the Markdown tables of ``docs/performance.md``.

Usage: ``.venv/bin/python bench/report.py bench/results/<file>.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value}{unit}"


def _dist(d: dict[str, Any]) -> str:
    if not d:
        return "n/a"
    return f"mean {d['mean']}, max {d['max']}"


def render(doc: dict[str, Any]) -> str:
    r = doc["results"]
    m = doc["machine"]
    lines = [
        f"Run `{doc['started']}` ({'quick' if doc['quick'] else 'full'}), machine: {m['nproc']} cores "
        f"({m['cpu']}), {m['memory_mib']:,} MiB, Python {m['python']}, kernel {m['kernel']}, "
        f"load average at start {m['loadavg_at_start'][0]:.2f}.",
        "",
        "| measure | emrops | direct SDK | target | met |",
        "|---|---|---|---|---|",
    ]
    base = r.get("baseline", {})
    lat = r.get("latency", {}).get("create_to_operation_id", {})
    sdk = base.get("sequential_call_latency", {})
    targets = doc.get("targets", {})

    def met(key: str) -> str:
        return "yes" if targets.get(key, {}).get("met") else ("no" if key in targets else "")

    if lat:
        lines.append(
            f"| create -> operationId p50 ({lat['n']} sequential) | {_fmt(lat['p50_ms'], ' ms')} | "
            f"{_fmt(sdk.get('p50_ms'), ' ms')} (call) | <= 150 ms | "
            f"{met('p50_create_to_operation_id_le_150ms')} |"
        )
        lines.append(
            f"| create -> operationId p95 | {_fmt(lat['p95_ms'], ' ms')} | "
            f"{_fmt(sdk.get('p95_ms'), ' ms')} | | |"
        )
        lines.append(
            f"| create -> operationId p99 | {_fmt(lat['p99_ms'], ' ms')} | "
            f"{_fmt(sdk.get('p99_ms'), ' ms')} | "
            f"<= 1 s | {met('p99_create_to_operation_id_le_1s')} |"
        )
    burst = r.get("burst")
    if burst:
        b = base.get("burst", {})
        lines.append(
            f"| burst of {burst['objects']:,} over {burst['clusters']} clusters: all submitted | "
            f"{_fmt(burst['seconds_to_all_submitted'], ' s')} | {_fmt(b.get('seconds'), ' s')} "
            f"(all answered) | <= 60 s | {met('burst_all_submitted_le_60s')} |"
        )
        if burst.get("problem"):
            lines.append(
                f"| burst: submitted before giving up | {burst.get('objects_submitted')} of "
                f"{burst['objects']:,} ({burst['problem']}) | | | |"
            )
        lines.append(
            f"| burst: all created (apiserver) | {_fmt(burst['seconds_to_all_created'], ' s')} | | | |"
        )
        those = " (of those that got there)" if burst.get("problem") else ""
        lines.append(
            f"| burst: all seen Running{those} | {_fmt(burst['seconds_to_all_running'], ' s')} | | | |"
        )
        lines.append(
            f"| burst: all Succeeded{those} | {_fmt(burst['seconds_to_all_succeeded'], ' s')} | | | |"
        )
        c = burst["cost"]
        lines.append(
            "| RunApplicationAction performed per action | "
            f"{_dist(c['run_application_action_ok_per_object'])} "
            f"| 1 | exactly 1 | {met('exactly_one_run_application_action')} |"
        )
        lines.append(
            f"| GetOperation calls per action | {_dist(c['get_operation_calls_per_object'])} | | adaptive | |"
        )
        lines.append(
            f"| status writes per action: transitions | {_dist(c['status_transition_writes_per_object'])} "
            f"| | <= 5 | {met('status_transition_writes_le_5')} |"
        )
        lines.append(
            f"| status writes per action: poll updates | {_dist(c['status_poll_writes_per_object'])} | | "
            "1 per poll that changed something | |"
        )
        lines.append(
            f"| metadata-only writes per action | {_dist(c['metadata_only_writes_per_object'])} | | | |"
        )
        a, i = burst["operator_active"], burst["operator_idle"]
        lines.append(
            f"| operator during the burst ({burst['objects']:,} objects) | "
            f"CPU {a['cpu_percent_of_one_core']}% "
            f"of a core, RSS peak {a['rss_peak_mib']} MiB | | | |"
        )
        lines.append(
            f"| operator idle, {burst['objects']:,} + latency objects | CPU {i['cpu_percent_of_one_core']}%, "
            f"RSS {i['rss_mib']} MiB | | | |"
        )
    scale = r.get("scale")
    if scale and "skipped" in scale:
        lines.append(f"| scale phase | skipped: {scale['skipped']} | | RSS <= 200 MiB | no |")
    elif scale:
        a, i = scale["operator_active"], scale["operator_idle"]
        lines.append(
            f"| operator active, growing to {scale['objects_total']:,} objects | CPU "
            f"{a['cpu_percent_of_one_core']}% of a core, RSS peak {a['rss_peak_mib']} MiB | | "
            f"RSS <= 200 MiB | {met('rss_le_200mib_at_5000')} |"
        )
        lines.append(
            f"| operator idle with {scale['objects_total']:,} objects | CPU {i['cpu_percent_of_one_core']}%, "
            f"RSS {i['rss_mib']} MiB | | RSS <= 200 MiB | |"
        )
        rs = scale["restart"]
        after = rs["operator_after_restart"]
        lines.append(
            f"| restart over {scale['objects_total']:,} finished objects | healthy in "
            f"{rs['seconds_to_ready']} s, {rs['emr_calls_during_restart']} EMR calls, then CPU "
            f"{after['cpu_percent_of_one_core']}%, RSS {after['rss_mib']} MiB | | | |"
        )
    idle_scale = r.get("idle_scale")
    if idle_scale:
        i, f = idle_scale["operator_idle"], idle_scale["first_10s_after_start"]
        lines.append(
            f"| operator started over {idle_scale['objects']:,} finished objects | healthy in "
            f"{idle_scale['seconds_to_healthy']} s; first 10 s CPU {f['cpu_percent_of_one_core']}%; "
            f"then CPU {i['cpu_percent_of_one_core']}%, RSS {i['rss_mib']} MiB; "
            f"{idle_scale['emr_calls']} EMR calls "
            "| | RSS <= 200 MiB | " + ("yes" if i["rss_mib"] <= 200 else "no") + " |"
        )
    ratios = r.get("ratios")
    if ratios:
        lines += [
            "",
            "Ratios emrops / direct SDK: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()) + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(json.loads(Path(argv[0]).read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
