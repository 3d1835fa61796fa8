#!/usr/bin/env bash
# Make sure kube-apiserver, etcd and kubectl (and helm) exist, building them from the Go
# modules when no cached copy is found. Prints `KUBEBUILDER_ASSETS=<folder>` as its last line.
#
# Why build: no release downloads are reachable on our CI machines, only the Go module proxy.
# `go install k8s.io/kubernetes/cmd/kube-apiserver@vX` does not work because k8s.io/kubernetes
# replaces its staging modules with ./staging paths; a throwaway module outside the repository
# that replaces them with their published versions does (the approach vcluster uses).
#
# Environment:
#   KUBEBUILDER_ASSETS   a folder with kube-apiserver, etcd, kubectl: used as is when complete
#   EMROPS_CACHE_DIR     where builds go (default: ~/.cache/emrops)
#   K8S_VERSION          default v1.36.3;  HELM_VERSION default v3.22.0
#   EMROPS_SKIP_HELM=1   do not build helm
#   EMROPS_ENVTEST_DOWNLOAD=0  skip the quick path (the official envtest release archive)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${EMROPS_CACHE_DIR:-$HOME/.cache/emrops}"
SRC="$CACHE/k8s-$K8S_VERSION/src"
BIN="$CACHE/k8s-$K8S_VERSION/bin"
HELM_BIN="$CACHE/helm-$HELM_VERSION/bin"

log() { echo "control-plane: $*" >&2; }

have_all() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ] && [ -x "$1/kubectl" ]; }

build_helm() {
  [ "${EMROPS_SKIP_HELM:-}" = 1 ] && return 0
  [ -x "$HELM_BIN/helm" ] && return 0
  log "building helm $HELM_VERSION (go install) ..."
  # Helm's own Makefile stamps the Kubernetes version `helm template` assumes (the client-go
  # minor + 1.x) into chartutil and the linter; without it a chart's kubeVersion constraint is
  # checked against v1.20 and fails. Read client-go's version from helm's go.mod, as it does.
  local gomod client_go minor pkg flags tmp
  gomod="$(GOFLAGS=-mod=mod go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
    | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
  client_go="$(sed -n 's/^\s*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n 1)"
  flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  if [ -n "$client_go" ]; then
    minor="$client_go"
    for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
      flags="$flags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
    done
  fi
  tmp="$HELM_BIN.tmp.$$"
  mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$HELM_BIN"
  mv "$tmp/helm" "$HELM_BIN/helm"
  rmdir "$tmp"
  log "helm ready: $HELM_BIN/helm"
}

# The quick path where the internet is reachable: controller-tools publishes envtest archives
# (kube-apiserver, etcd, kubectl) per Kubernetes release. A short timeout keeps machines without
# that access (ours) from waiting: they fall through to the build from modules.
download_envtest() {
  [ "${EMROPS_ENVTEST_DOWNLOAD:-1}" = 0 ] && return 1
  command -v curl >/dev/null || return 1
  local arch url tmp
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) return 1 ;; esac
  url="https://github.com/kubernetes-sigs/controller-tools/releases/download/envtest-$K8S_VERSION/envtest-$K8S_VERSION-linux-$arch.tar.gz"
  tmp="$(mktemp -d)"
  log "trying the envtest release archive (10 s connect timeout) ..."
  if curl -fsSL --connect-timeout 10 --max-time 300 "$url" -o "$tmp/envtest.tgz" 2>/dev/null \
    && tar -xzf "$tmp/envtest.tgz" -C "$tmp" && have_all "$tmp/controller-tools/envtest"; then
    mkdir -p "$BIN"
    mv "$tmp"/controller-tools/envtest/{kube-apiserver,etcd,kubectl} "$BIN/"
    rm -rf "$tmp"
    log "control plane ready in $BIN (downloaded)"
    return 0
  fi
  rm -rf "$tmp"
  log "no envtest download here; building from the Go modules instead"
  return 1
}

build_k8s() {
  command -v go >/dev/null || { log "Go is required to build the control plane (go >= 1.26)"; exit 1; }
  mkdir -p "$SRC" "$BIN"
  local gomod minor
  gomod="$(cd "$SRC" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  local staging="v0.${K8S_VERSION#v1.}"
  {
    echo "module emrops.local/controlplane"
    echo
    grep -E '^(go|godebug) ' "$gomod"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # Every staging module the kubernetes go.mod points at ./staging/... gets its published version.
    grep -E '=> \./staging/' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } >"$SRC/go.mod"
  cat >"$SRC/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving modules for Kubernetes $K8S_VERSION (go mod tidy; first time downloads ~1-2 GB) ..."
  (cd "$SRC" && go mod tidy)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
-X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  local etcd_version
  etcd_version="$(cd "$SRC" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
  log "building etcd $etcd_version ..."
  (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  for cmd in kube-apiserver kubectl; do
    log "building $cmd $K8S_VERSION (the first build takes 10-25 minutes on 2 cores) ..."
    (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"
  done
  log "control plane ready in $BIN"
}

main() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS"; then
    build_helm
    echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    return 0
  fi
  mkdir -p "$CACHE"
  # One build at a time: a second `make` waits here instead of building the same thing twice.
  exec 9>"$CACHE/build.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/build.lock; waiting ..."
    flock 9
  fi
  have_all "$BIN" || download_envtest || build_k8s
  build_helm
  echo "KUBEBUILDER_ASSETS=$BIN"
}

main "$@"
