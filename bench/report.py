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
            f"{_fmt(sdk.get('p50_ms'), ' ms')} (call) | <= 50 ms | "
            f"{met('p50_create_to_operation_id_le_50ms')} |"
        )
        lines.append(
            f"| create -> operationId p95 | {_fmt(lat['p95_ms'], ' ms')} | "
            f"{_fmt(sdk.get('p95_ms'), ' ms')} | | |"
        )
        lines.append(
            f"| create -> operationId p99 | {_fmt(lat['p99_ms'], ' ms')} | "
            f"{_fmt(sdk.get('p99_ms'), ' ms')} | "
            f"<= 300 ms | {met('p99_create_to_operation_id_le_300ms')} |"
        )
    burst = r.get("burst")
    if burst:
        b = base.get("burst", {})
        lines.append(
            f"| burst of {burst['objects']:,} over {burst['clusters']} clusters: all submitted | "
            f"{_fmt(burst['seconds_to_all_submitted'], ' s')} | {_fmt(b.get('seconds'), ' s')} "
            f"(all answered) | <= 1.5x write floor | "
            f"{met('burst_all_submitted_le_1_5x_apiserver_write_floor')} |"
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
            f"| | | |"
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
        lines.append(f"| scale phase | skipped: {scale['skipped']} | | RSS <= 150 MiB | no |")
    elif scale:
        a, i = scale["operator_active"], scale["operator_idle"]
        lines.append(
            f"| operator active, growing to {scale['objects_total']:,} objects | CPU "
            f"{a['cpu_percent_of_one_core']}% of a core, RSS peak {a['rss_peak_mib']} MiB | | "
            f"RSS <= 150 MiB | {met('rss_le_150mib_at_any_point_of_5000')} |"
        )
        lines.append(
            f"| operator idle with {scale['objects_total']:,} objects | CPU {i['cpu_percent_of_one_core']}%, "
            f"RSS {i['rss_mib']} MiB | | RSS <= 100 MiB | {met('rss_idle_le_100mib_after_5000')} |"
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
            "| | RSS <= 100 MiB | " + ("yes" if i["rss_mib"] <= 100 else "no") + " |"
        )
    ratios = r.get("ratios")
    if ratios:
        lines += [
            "",
            "Ratios emrops / direct SDK: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()) + ".",
        ]
    lines += _floors(r, doc.get("floor_ratios") or {})
    lines += _targets(targets)
    return "\n".join(lines) + "\n"


#: How each target's measured figure is keyed in ``targets`` (first found wins), with its unit.
_VALUE_KEYS = (
    ("value_ms", " ms"),
    ("value_s", " s"),
    ("value_mib", " MiB"),
    ("value_kib", " KiB"),
    ("value_pct", "% of a core"),
)


def _measured(target: dict[str, Any]) -> str:
    for key, unit in _VALUE_KEYS:
        if key in target:
            return _fmt(target[key], unit)
    value = target.get("value")
    return _dist(value) if isinstance(value, dict) else _fmt(value)


def _floors(r: dict[str, Any], ratios: dict[str, Any]) -> list[str]:
    floors = r.get("floors")
    if not floors:
        return []
    lines = ["", "| floor (same run) | measured |", "|---|---|"]
    kopf = floors.get("kopf")
    if kopf:
        first, idle = kopf["first_10s_after_start"], kopf["idle"]
        lines.append(
            f"| kopf alone (no-op handler, emrops' kopf settings) over {kopf['objects']:,} objects | "
            f"first 10 s CPU {first['cpu_percent_of_one_core']}%; "
            f"then CPU {idle['cpu_percent_of_one_core']}%, "
            f"RSS {idle['rss_mib']} MiB (peak {kopf['rss_peak_mib']} MiB) |"
        )
    strict = "emrops' status writes before status.operationId"
    # Results written before both floors existed measured only the stricter one, under the first key.
    both = "apiserver_writes_to_operation_id" in floors
    for key, which in (
        ("apiserver_writes", "emrops' status writes per action" if both else strict),
        ("apiserver_writes_to_operation_id", strict),
    ):
        writes = floors.get(key)
        if writes:
            lines.append(
                f"| bare client: {writes['objects']:,} creates + {writes['status_writes_per_object']} "
                f"status writes each ({which}), {writes['concurrency']} at a time | "
                f"{_fmt(writes['seconds'], ' s')} ({writes['requests_per_second']} requests/s) |"
            )
    if ratios:
        lines += ["", "Ratios emrops / floor: " + ", ".join(f"{k} = {v}" for k, v in ratios.items()) + "."]
    lines += _cpu_budgets(r)
    return lines


def _cpu_budgets(r: dict[str, Any]) -> list[str]:
    """Where the machine's CPU went in the burst and in its floor (results since 2026-12-03)."""
    rows = [
        ("burst, first create to last submission", (r.get("burst") or {}).get("cpu_budget_to_all_submitted")),
        ("apiserver write floor", ((r.get("floors") or {}).get("apiserver_writes") or {}).get("cpu_budget")),
    ]
    kept = [(what, budget) for what, budget in rows if budget]
    if not kept:
        return []
    names = sorted(kept[0][1]["cpu_seconds"])
    lines = [
        "",
        "| CPU seconds by process | wall | " + " | ".join(names) + " | total | fits in (total / cores) |",
        "|---|---|" + "---|" * (len(names) + 2),
    ]
    for what, budget in kept:
        cpu = budget["cpu_seconds"]
        cells = " | ".join(_fmt(cpu.get(name)) for name in names)
        lines.append(
            f"| {what} | {_fmt(budget['seconds'], ' s')} | {cells} | {budget['total_cpu_seconds']} "
            f"| {_fmt(budget['cpu_bound_seconds'], ' s')} |"
        )
    return lines


def _targets(targets: dict[str, Any]) -> list[str]:
    if not targets:
        return []
    lines = ["", "| target | measured | floor | ratio | met |", "|---|---|---|---|---|"]
    for key, target in targets.items():
        floor = target.get("floor_s", target.get("floor_mib"))
        lines.append(
            f"| `{key}` | {_measured(target)} | {_fmt(floor)} | {_fmt(target.get('ratio'))} | "
            f"{'yes' if target.get('met') else 'no'} |"
        )
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(json.loads(Path(argv[0]).read_text())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
