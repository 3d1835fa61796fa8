#!/usr/bin/env bash
# Make sure the Argo CD Lua harness (hack/argocd-lua/: gopher-lua restricted the way Argo CD runs
# argocd-cm scripts) is built, building it with Go when no cached copy exists. Prints the binary's
# path as its last line. The cache is keyed by a hash of the harness's sources, so an edit to
# main.go, go.mod or go.sum builds a new binary; the pinned modules come from the Go module proxy.
#
# Environment:
#   EMROPS_CACHE_DIR  where builds go (default: ~/.cache/emrops)
set -euo pipefail

SRC="$(cd "$(dirname "$0")/argocd-lua" && pwd)"
CACHE="${EMROPS_CACHE_DIR:-$HOME/.cache/emrops}"

log() { echo "argocd-lua: $*" >&2; }

key="$(cd "$SRC" && for f in go.mod go.sum *.go; do printf '%s\0' "$f" && cat "$f"; done | sha256sum | cut -c1-16)"
OUT="$CACHE/argocd-lua/$key/argocd-lua"

if [ ! -x "$OUT" ]; then
  command -v go >/dev/null || { log "Go (>= 1.23) is required to build the Argo CD Lua harness"; exit 1; }
  log "building the Argo CD Lua harness ($key) ..."
  mkdir -p "$(dirname "$OUT")"
  tmp="$OUT.tmp.$$"
  trap 'rm -f "$tmp"' EXIT
  (cd "$SRC" && GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$tmp" .)
  mv "$tmp" "$OUT"
  log "ready: $OUT"
fi
echo "$OUT"
