#!/usr/bin/env bash
# Make sure everything a one-node Kubernetes cluster needs on this machine exists (tests/e2e,
# `make e2e`), building what is missing once and caching it:
#   - the control plane (kube-apiserver, etcd, kubectl, helm): hack/control-plane.sh;
#   - kubelet, kube-proxy, kube-scheduler, kube-controller-manager, from the same throwaway module
#     hack/control-plane.sh builds kube-apiserver from (same version, same replace directives);
#   - containerd 2.x, its runc shim and ctr, from their Go module (Debian ships containerd 1.6,
#     which Kubernetes 1.36 no longer supports);
#   - the pod sandbox ("pause") program, hack/node/pause.go;
#   - Debian packages: runc (the OCI runtime), the CNI plugins, nftables, iptables, conntrack.
# Prints `KUBEBUILDER_ASSETS=<folder>` and, last, `EMROPS_NODE_ASSETS=<folder>` (the node's
# binaries). Needs root (as running the node does) only to install missing Debian packages.
#
# Environment:
#   EMROPS_CACHE_DIR     where builds go (default: ~/.cache/emrops)
#   K8S_VERSION          default v1.36.3;  CONTAINERD_VERSION default v2.4.2
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CACHE="${EMROPS_CACHE_DIR:-$HOME/.cache/emrops}"
SRC="$CACHE/k8s-$K8S_VERSION/src"
NODE_BIN="$CACHE/node-$K8S_VERSION-containerd-$CONTAINERD_VERSION/bin"
NODE_COMMANDS=(kubelet kube-proxy kube-scheduler kube-controller-manager)
CONTAINERD_COMMANDS=(containerd containerd-shim-runc-v2 ctr)

log() { echo "node: $*" >&2; }

# Debian's packages, by the file each provides. crun is not used: it rejects the runtime spec
# version containerd 2 writes on this machine's hybrid cgroups; runc accepts it.
install_packages() {
  local missing=()
  [ -x /usr/sbin/runc ] || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v nft >/dev/null || missing+=(nftables)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get) ..."
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

have_node() {
  local cmd
  for cmd in "${NODE_COMMANDS[@]}" "${CONTAINERD_COMMANDS[@]}" pause; do
    [ -x "$NODE_BIN/$cmd" ] || return 1
  done
}

build_kubernetes_node() {
  local cmd todo=()
  for cmd in "${NODE_COMMANDS[@]}"; do [ -x "$NODE_BIN/$cmd" ] || todo+=("$cmd"); done
  [ "${#todo[@]}" -eq 0 ] && return 0
  [ -f "$SRC/go.mod" ] || { log "$SRC/go.mod is missing: hack/control-plane.sh should have made it"; exit 1; }
  # A second tools file next to control-plane.sh's: `go mod tidy` then keeps the node commands'
  # dependencies in go.sum too (it only keeps what some file imports).
  cat >"$SRC/tools_node.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  log "resolving the node commands' modules (go mod tidy) ..."
  (cd "$SRC" && go mod tidy)
  local minor ldflags
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION \
-X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for cmd in "${todo[@]}"; do
    log "building $cmd $K8S_VERSION (a few minutes each on 2 cores) ..."
    (cd "$SRC" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$NODE_BIN/$cmd.tmp" \
      "k8s.io/kubernetes/cmd/$cmd")
    mv "$NODE_BIN/$cmd.tmp" "$NODE_BIN/$cmd"
  done
}

# containerd's module has no replace directives, so `go install module@version` builds it. The tags
# leave out snapshotters for file systems this machine does not use and the tracing exporters.
build_containerd() {
  local cmd todo=() tmp
  for cmd in "${CONTAINERD_COMMANDS[@]}"; do [ -x "$NODE_BIN/$cmd" ] || todo+=("$cmd"); done
  [ "${#todo[@]}" -eq 0 ] && return 0
  log "building containerd $CONTAINERD_VERSION: ${todo[*]} ..."
  tmp="$(mktemp -d)"
  local packages=()
  for cmd in "${todo[@]}"; do packages+=("github.com/containerd/containerd/v2/cmd/$cmd@$CONTAINERD_VERSION"); done
  (cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -tags "no_btrfs no_zfs no_devmapper no_tracing" \
    -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" "${packages[@]}")
  mv "$tmp"/* "$NODE_BIN/"
  rmdir "$tmp"
}

build_pause() {
  [ -x "$NODE_BIN/pause" ] && [ "$NODE_BIN/pause" -nt "$HERE/node/pause.go" ] && return 0
  log "building the pause program (hack/node/pause.go) ..."
  (cd "$HERE/node" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$NODE_BIN/pause.tmp" pause.go)
  mv "$NODE_BIN/pause.tmp" "$NODE_BIN/pause"
}

main() {
  install_packages
  # Builds (or finds) kube-apiserver, etcd, kubectl and helm, taking and releasing the build lock.
  local assets_line
  assets_line="$("$HERE/control-plane.sh" | tail -n 1)"
  mkdir -p "$NODE_BIN"
  if ! have_node || ! [ "$NODE_BIN/pause" -nt "$HERE/node/pause.go" ]; then
    command -v go >/dev/null || { log "Go is required to build the node (go >= 1.26)"; exit 1; }
    # The same lock as hack/control-plane.sh: one Go build at a time on this machine's cores.
    exec 9>"$CACHE/build.lock"
    if ! flock -n 9; then
      log "another build holds $CACHE/build.lock; waiting ..."
      flock 9
    fi
    build_kubernetes_node
    build_containerd
    build_pause
    exec 9>&-
    log "node ready in $NODE_BIN"
  fi
  echo "$assets_line"
  echo "EMROPS_NODE_ASSETS=$NODE_BIN"
}

main "$@"
