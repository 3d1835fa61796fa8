"""Replay one seed with a full trace: ``PYTHONPATH=tests python -m simulation SEED [name=value ...]``.

``name=value`` overrides a parameter (as in a ``run_seed(SEED, name=value)`` reproduction);
``--no-checks`` runs without the invariants, ``--tail N`` prints only the last N lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from simulation.scenario import Params
from simulation.world import simulate


def _value(text: str, kind: Any) -> Any:
    if text == "None":
        return None
    if "bool" in str(kind):
        return text.lower() in ("1", "true", "yes")
    if "int" in str(kind) and "float" not in str(kind):
        return int(text)
    if "float" in str(kind):
        return float(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulation", description=__doc__)
    parser.add_argument("seed", type=int)
    parser.add_argument("overrides", nargs="*", metavar="name=value")
    parser.add_argument("--no-checks", action="store_true", help="skip the invariants")
    parser.add_argument("--tail", type=int, default=0, help="print only the last N trace lines")
    args = parser.parse_args(argv)
    kinds = {f.name: f.type for f in dataclasses.fields(Params)}
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        name, sep, text = item.partition("=")
        if not sep or name not in kinds:
            parser.error(f"not a parameter: {item!r} (parameters: {', '.join(kinds)})")
        overrides[name] = _value(text, kinds[name])
    result = simulate(args.seed, full=True, checks=not args.no_checks, **overrides)
    lines = result.trace[-args.tail :] if args.tail else result.trace
    print(result.params.repro(result.seed))
    print("\n".join(lines))
    print(
        f"-- {result.virtual_seconds:.0f} virtual s, {result.operations} operations, "
        f"{result.real_seconds * 1000:.0f} ms, digest {result.digest[:16]}"
    )
    if result.violation is not None:
        print(result.report(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
