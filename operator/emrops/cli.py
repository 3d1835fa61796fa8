"""The ``emrops`` command: ``emrops run``, ``emrops emulator``, ``emrops demo``.

Each subcommand lives in its own module, which provides ``HELP`` (one line), ``DESCRIPTION``,
``configure(parser)`` (its flags) and ``main(args) -> int``. This module only dispatches, so that
the operator, the emulator and the demo stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SUBCOMMANDS: dict[str, str] = {
    "run": "emrops.controller.cli",
    "emulator": "emrops.emulator.cli",
    "demo": "emrops.demo",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, just that subcommand's module is imported (fast start-up,
    and one subcommand never depends on another's imports)."""
    parser = argparse.ArgumentParser(
        prog="emrops",
        description="Kubernetes operator for Alibaba Cloud EMR service actions (ServiceAction resources).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"see 'emrops {name} --help'")
            continue
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(_main=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(only).parse_args(argv)
    result: int = args._main(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
