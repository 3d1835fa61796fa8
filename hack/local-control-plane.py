#!/usr/bin/env python3
"""Run the local control plane (etcd + kube-apiserver) in the foreground until Ctrl-C.

For trying emrops by hand (docs/getting-started.md): it starts the same real apiserver the tests
use, writes its admin kubeconfig to ``--kubeconfig`` and keeps running. Nothing is installed in
it: no CRD, no namespaces but the defaults. Everything is removed when it stops.
The binaries come from ``make control-plane`` (or ``KUBEBUILDER_ASSETS``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emrops.controlplane import AssetsNotFoundError, ControlPlane


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=Path.home() / ".cache" / "emrops" / "local.kubeconfig",
        help="where to write the admin kubeconfig (default: %(default)s)",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cp = ControlPlane()
        cp.start()
    except AssetsNotFoundError as exc:
        print(f"local-control-plane: {exc}", file=sys.stderr)
        return 1
    try:
        shutil.copyfile(cp.kubeconfig, args.kubeconfig)
        args.kubeconfig.chmod(0o600)
        print(f"kube-apiserver ready at {cp.server}", flush=True)
        print(f"export KUBECONFIG={args.kubeconfig}", flush=True)
        print("Ctrl-C stops it and deletes everything in it.", flush=True)
        stop.wait()
    finally:
        cp.stop()
        args.kubeconfig.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
