#!/usr/bin/env bash
# Make sure promtool (Prometheus' rule checker and rule unit-test runner) is built, building it
# from the Prometheus Go module when no cached copy exists. Prints the binary's path as its last
# line. The chart's observability pack is checked with it (tests/integration/deploy).
#
# Why build: no release downloads are reachable on our CI machines, only the Go module proxy.
# Prometheus publishes its Go module as v0.<major*100+minor>.<patch>: v0.316.0 is Prometheus 3.16.0.
#
# Environment:
#   EMROPS_CACHE_DIR  where builds go (default: ~/.cache/emrops)
#   PROMTOOL_VERSION  the module version (default v0.316.0)
set -euo pipefail

VERSION="${PROMTOOL_VERSION:-v0.316.0}"
CACHE="${EMROPS_CACHE_DIR:-$HOME/.cache/emrops}"
BIN="$CACHE/promtool-$VERSION/bin"
OUT="$BIN/promtool"

log() { echo "promtool: $*" >&2; }

if [ ! -x "$OUT" ]; then
  command -v go >/dev/null || { log "Go is required to build promtool (go >= 1.24)"; exit 1; }
  # One build at a time: a second caller (another test process, make promtool) waits for the
  # first and then finds its binary.
  mkdir -p "$CACHE"
  exec 9>"$CACHE/promtool.lock"
  flock 9
fi
if [ ! -x "$OUT" ]; then
  # The release that module version is: v0.316.0 -> 3.16.0 (for `promtool --version`).
  minor="$(echo "$VERSION" | cut -d. -f2)"
  release="$((minor / 100)).$((minor % 100)).$(echo "$VERSION" | cut -d. -f3)"
  log "building promtool $VERSION (Prometheus $release) ..."
  mkdir -p "$BIN"
  # go install writes straight into GOBIN: build into a scratch folder, then move the binary
  # into place, so an interrupted build never leaves a half-written promtool behind.
  tmp="$(mktemp -d "$CACHE/promtool-build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" GOWORK=off GOFLAGS="-buildvcs=false" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
    "github.com/prometheus/prometheus/cmd/promtool@$VERSION"
  mv "$tmp/promtool" "$OUT"
  log "ready: $OUT"
fi
echo "$OUT"
