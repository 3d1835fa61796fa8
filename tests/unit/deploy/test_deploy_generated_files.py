"""Every derived file under deploy/ and docs/ equals a fresh render of its source.

Sources and what is derived from them:
- crds/*.yaml -> deploy/helm/emrops/files/crds/ (hack/sync-chart-crds.sh)
- the chart -> deploy/manifests/emrops.yaml (hack/render-manifests.sh; needs the helm binary)
- deploy/argocd/*.lua -> deploy/argocd/argocd-cm.yaml (hack/gen_argocd_cm.py)
- the CRD and emrops.acs.codes -> docs/reference.md, docs/troubleshooting.md (hack/gen_docs.py)
- emrops.controller.settings -> the settings table of docs/operator.md (hack/gen_docs.py)
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
import yaml
from deploy_paths import CHART, ROOT, load_hack_script

from emrops.acs.codes import TABLE
from fixtures.controlplane import require_helm

CRDS = ROOT / "crds"


def test_chart_crds_are_identical_to_crds_folder() -> None:
    source = {p.name: p.read_bytes() for p in CRDS.glob("*.yaml")}
    copies = {p.name: p.read_bytes() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert source, "crds/ holds no CRD"
    assert copies.keys() == source.keys(), "run hack/sync-chart-crds.sh"
    for name, text in source.items():
        assert copies[name] == text, f"{name} differs from the chart's copy: run hack/sync-chart-crds.sh"


def test_argocd_cm_is_current() -> None:
    generator = load_hack_script("gen_argocd_cm")
    assert generator.OUTPUT.read_text() == generator.render(), "run hack/gen_argocd_cm.py"


def test_argocd_cm_embeds_the_tested_lua_verbatim() -> None:
    data = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())["data"]
    argocd = ROOT / "deploy" / "argocd"
    assert (
        data["resource.customizations.health.emrops.io_ServiceAction"] == (argocd / "health.lua").read_text()
    )
    actions = yaml.safe_load(data["resource.customizations.actions.emrops.io_ServiceAction"])
    assert actions["discovery.lua"] == (argocd / "actions" / "discovery.lua").read_text()
    assert [d["name"] for d in actions["definitions"]] == ["rerun"]
    assert (
        actions["definitions"][0]["action.lua"] == (argocd / "actions" / "rerun" / "action.lua").read_text()
    )


@pytest.mark.parametrize(
    "page", ["reference.md", "schedule-reference.md", "troubleshooting.md", "operator.md"]
)
def test_generated_docs_are_current(page: str) -> None:
    generator = load_hack_script("gen_docs")
    fresh = {path.name: text for path, text in generator.render_all().items()}
    assert (ROOT / "docs" / page).read_text() == fresh[page], "docs are stale: run hack/gen_docs.py"


def test_troubleshooting_lists_every_error_code_with_its_guidance() -> None:
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    for row in TABLE.values():
        line = next((ln for ln in page.splitlines() if ln.startswith(f"| `{row.code}`")), None)
        assert line is not None, f"{row.code} missing from troubleshooting.md"
        assert f"| {row.http_status} |" in line
        assert row.classification.value in line
        assert " ".join(row.guidance.split()) in line


def _schema_paths(schema: dict[str, Any], path: str) -> list[str]:
    found = []
    for name, child in schema.get("properties", {}).items():
        child_path = f"{path}.{name}"
        found.append(child_path)
        if child.get("type") == "array" and child.get("items", {}).get("type") == "object":
            found += _schema_paths(child["items"], f"{child_path}[]")
        elif child.get("type") == "object":
            found += _schema_paths(child, child_path)
    return found


def test_reference_documents_every_field() -> None:
    crd = yaml.safe_load((CRDS / "emrops.io_serviceactions.yaml").read_text())
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    page = (ROOT / "docs" / "reference.md").read_text()
    paths = _schema_paths(root["properties"]["spec"], "spec") + _schema_paths(
        root["properties"]["status"], "status"
    )
    assert "spec.clusterId" in paths and "status.conditions[].observedGeneration" in paths
    missing = [p for p in paths if f"| `{p}` |" not in page]
    assert not missing


def test_rendered_manifests_are_current() -> None:
    helm = require_helm()
    fresh = subprocess.run(
        ["bash", str(ROOT / "hack" / "render-manifests.sh"), "--stdout"],
        env={**os.environ, "HELM": helm},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / "deploy" / "manifests" / "emrops.yaml").read_text()
    assert committed == fresh, "deploy/manifests/emrops.yaml is stale: run hack/render-manifests.sh"


def test_rendered_manifests_hold_no_helm_hook() -> None:
    """`kubectl apply` would create the `helm test` Pod as a plain object: it must not be there."""
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "manifests" / "emrops.yaml").read_text()) if d]
    assert not [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    assert "Pod" not in {d["kind"] for d in docs}


def test_rendered_manifests_elect_a_leader_on_the_lease_they_grant() -> None:
    """`kubectl apply` gets the chart's defaults: leader election on, its Lease Role in the same
    namespace as the operator, naming the Lease the operator is told to use, bound to its
    ServiceAccount; one replica, so a RollingUpdate (the new pod a standby) and no PDB."""
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "manifests" / "emrops.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    namespace = deployment["metadata"]["namespace"]
    pod = deployment["spec"]["template"]["spec"]
    (operator,) = pod["containers"]
    flags = dict(a.split("=", 1) for a in operator["args"] if a.startswith("--leader-elect"))
    assert flags["--leader-elect"] == "true" and flags["--leader-election-namespace"] == namespace
    lease = flags["--leader-election-id"]
    (role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == f"{lease}-leader-election"]
    assert role["metadata"]["namespace"] == namespace
    assert [(r["resources"], r["verbs"], r.get("resourceNames")) for r in role["rules"]] == [
        (["leases"], ["create"], None),
        (["leases"], ["get", "update"], [lease]),
    ]
    (binding,) = [
        d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]
    ]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": namespace}
    ]
    assert {e["name"] for e in operator["env"]} >= {"POD_NAME", "POD_NAMESPACE"}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "PodDisruptionBudget" not in {d["kind"] for d in docs}


def test_chart_renders_every_crd_unchanged_but_for_metadata() -> None:
    helm = require_helm()
    out = subprocess.run(
        [helm, "template", "emrops", str(CHART), "--kube-version", "1.36.0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rendered = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all(out)
        if d and d["kind"] == "CustomResourceDefinition"
    }
    sources = [yaml.safe_load(path.read_text()) for path in sorted(CRDS.glob("*.yaml"))]
    assert sorted(rendered) == sorted(s["metadata"]["name"] for s in sources)
    for source in sources:
        crd = rendered[source["metadata"]["name"]]
        assert crd["spec"] == source["spec"]
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
