#!/usr/bin/env bash
# Copy the CRDs from crds/ (their one source) into the Helm chart, which can only read files
# inside its own folder. tests/unit/deploy/test_chart_sync.py fails when the copies differ,
# so run this after every change to crds/ (`make manifests` does, then re-renders deploy/manifests).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/deploy/helm/emrops/files/crds"
mkdir -p "$dest"
rm -f "$dest"/*.yaml
cp "$root"/crds/*.yaml "$dest"/
echo "synced $(ls "$root"/crds/*.yaml | wc -l) CRD file(s) into $dest" >&2
