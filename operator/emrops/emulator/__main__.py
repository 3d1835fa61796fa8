"""``python -m emrops.emulator``: the emulator alone, same flags as ``emrops emulator``."""

from __future__ import annotations

import argparse
import sys

from emrops.emulator import cli

parser = argparse.ArgumentParser(
    prog="emrops emulator", description=cli.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
)
cli.configure(parser)
sys.exit(cli.main(parser.parse_args()))
