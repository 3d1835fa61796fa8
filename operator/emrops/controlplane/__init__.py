"""A real local Kubernetes control plane (etcd + kube-apiserver) for tests and ``emrops demo``.

``ControlPlane`` starts both on free loopback ports with freshly generated certificates, writes
an admin kubeconfig and stops everything cleanly, even when the run is interrupted. The binaries
come from ``KUBEBUILDER_ASSETS`` or the cache ``make control-plane`` (``hack/control-plane.sh``)
builds. This package uses only the standard library, ``cryptography`` and PyYAML: it imports
nothing else of emrops, and nothing of emrops depends on it except tests and the demo.
"""

from __future__ import annotations

from emrops.controlplane.assets import AssetsNotFoundError, find_assets, find_kubectl
from emrops.controlplane.launcher import ControlPlane, ControlPlaneError, KubectlError

__all__ = [
    "AssetsNotFoundError",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "find_assets",
    "find_kubectl",
]
