"""In a pod the operator reaches the apiserver at the address the pod's environment names.

kopf's in-cluster login says ``https://kubernetes.default.svc``, a name only cluster DNS
resolves; the e2e node (tests/e2e) has no cluster DNS, and there the operator could not reach the
apiserver at all. client-go takes ``KUBERNETES_SERVICE_HOST`` / ``KUBERNETES_SERVICE_PORT``,
which the kubelet sets in every pod; so does the operator now.
"""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from emrops.controller import login


@pytest.mark.parametrize(
    ("environ", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "https://10.96.0.1:443"),
    ],
)
def test_the_server_comes_from_the_pods_environment(environ: dict[str, str], server: str) -> None:
    assert login.in_cluster_server(environ) == server


def test_in_a_pod_the_service_account_login_uses_the_environments_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.213.2.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.delenv("KUBECONFIG", raising=False)

    def kopfs_login(**_: Any) -> kopf.ConnectionInfo:
        # What kopf's login_with_service_account returns, read from the pod's token files.
        return kopf.ConnectionInfo(
            server="https://kubernetes.default.svc", token="t", ca_path="/ca.crt", default_namespace="ns"
        )

    monkeypatch.setattr(kopf, "login_with_service_account", kopfs_login)
    info = login.connection_info()
    assert info.server == "https://10.213.2.1:443"
    # Everything else (the token, the CA, the namespace) stays kopf's.
    assert (info.token, info.ca_path, info.default_namespace) == ("t", "/ca.crt", "ns")
