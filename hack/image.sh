#!/usr/bin/env bash
# Build the operator image from deploy/Dockerfile with podman, without a container registry.
#
# Where no registry is reachable (our CI machines) python:3.11-slim cannot be pulled, so the
# Dockerfile's PYTHON_IMAGE is a local Debian bookworm base (Python 3.11, as python:3.11-slim)
# made once with debootstrap from the apt mirror, cached like the control plane. Users with
# Docker build the same Dockerfile unchanged: `docker build -f deploy/Dockerfile .`.
#
# The image is rebuilt only when its inputs change (the files the build context holds, the
# Dockerfile, the base): their hash is the image's io.emrops.inputs label. An OCI archive of it
# (for `ctr images import`) is written next to the base. Progress goes to stderr; the last two
# lines are `IMAGE_ARCHIVE=<path>` and `IMAGE=<name>`.
#
# Environment:
#   EMROPS_CACHE_DIR  where the base and the archive go (default: ~/.cache/emrops)
#   EMROPS_IMAGE      the tag to build (default: localhost/emrops:<the chart's appVersion>)
#   PYTHON_IMAGE      a base image to use instead of the debootstrap one (e.g.
#                     docker.io/library/python:3.11-slim where a registry is reachable)
#   DEBIAN_MIRROR     debootstrap's mirror (default: this machine's apt mirror for bookworm,
#                     else http://deb.debian.org/debian)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${EMROPS_CACHE_DIR:-$HOME/.cache/emrops}"
SUITE=bookworm
# What the Dockerfile runs on its base: `pip wheel`, `python -m venv`, then python at runtime;
# ca-certificates for the EMR endpoints' TLS (python:3.11-slim has it too).
BASE_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
BASE_DIR="$CACHE/base-$SUITE"
BASE_TAR="$BASE_DIR/rootfs.tar"
BASE_IMAGE="localhost/emrops-base:$SUITE"
APP_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$ROOT/deploy/helm/emrops/Chart.yaml")"
IMAGE="${EMROPS_IMAGE:-localhost/emrops:$APP_VERSION}"
ARCHIVE="$CACHE/image/emrops-$APP_VERSION.oci.tar"
INPUTS_LABEL=io.emrops.inputs

log() { echo "image: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# --- tools ------------------------------------------------------------------------------------

missing_tools() {
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || echo "$tool"; done
}

ensure_tools() {
  local missing
  missing="$(missing_tools "$@" | tr '\n' ' ')"
  [ -z "${missing// /}" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing $missing(apt-get) ..."
    apt-get update -q >&2
    # The Debian package names are the commands' names.
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >&2
    missing="$(missing_tools "$@" | tr '\n' ' ')"
    [ -z "${missing// /}" ] && return 0
  fi
  die "missing: $missing- install them (Debian/Ubuntu: sudo apt-get install -y podman buildah runc debootstrap), or run this script as root where apt-get can install them"
}

# --- the Debian base --------------------------------------------------------------------------

# The Debian mirror for $SUITE in the apt source files given (deb822 .sources or one-line
# .list), so that debootstrap goes where apt already goes; nothing when they name none.
apt_mirror() {
  local file uri
  for file in "$@"; do
    [ -f "$file" ] || continue
    case "$file" in
      *.sources)
        # Stanzas are separated by blank lines: the first URI of one whose Suites has $SUITE.
        uri="$(awk -v suite="$SUITE" '
          /^[[:space:]]*$/ { if (uri != "" && found) exit; uri = ""; found = 0; next }
          tolower($1) == "uris:" { uri = $2 }
          tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
          END { if (uri != "" && found) print uri }
        ' "$file")"
        ;;
      *) uri="$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' "$file")" ;;
    esac
    if [ -n "$uri" ]; then
      echo "$uri"
      return 0
    fi
  done
}

# DEBIAN_MIRROR, else this machine's apt mirror, else Debian's own redirector.
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local found
  found="$(apt_mirror /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list)"
  echo "${found:-http://deb.debian.org/debian}"
}

# The root filesystem tarball, made once (again only when the package list changes).
build_base_tar() {
  # Bump the last word when the way the base is made changes: the cached base is remade.
  local stamp="$SUITE $BASE_PACKAGES 2"
  if [ -f "$BASE_TAR" ] && [ "$(cat "$BASE_DIR/inputs" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root to make the Debian base: run \`sudo hack/image.sh\` once (the base is then cached in $BASE_DIR), or set PYTHON_IMAGE to a Python 3.11 image you can pull"
  ensure_tools debootstrap
  local mirror_url rootfs
  mirror_url="$(mirror)"
  mkdir -p "$BASE_DIR"
  rootfs="$(mktemp -d "$BASE_DIR/rootfs.XXXXXX")"
  local began=$SECONDS
  log "making the Debian $SUITE base with debootstrap (a few minutes, once) ..."
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$mirror_url" >&2; then
    rm -rf "$rootfs"
    die "debootstrap from $mirror_url failed; set DEBIAN_MIRROR to a reachable Debian mirror"
  fi
  # What an image does not need: package caches and lists, documentation, translations, logs.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$BASE_TAR.tmp" .
  rm -rf "$rootfs"
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  echo "$stamp" >"$BASE_DIR/inputs"
  log "base root filesystem: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1), made in $((SECONDS - began)) s)"
}

# The base image in podman's store, imported again when the store lost it or the tarball changed.
import_base() {
  local digest current old
  digest="$(sha256sum "$BASE_TAR" | cut -c1-64)"
  current="$(podman image inspect --format '{{ index .Labels "io.emrops.rootfs" }}' "$BASE_IMAGE" 2>/dev/null || true)"
  [ "$current" = "$digest" ] && return 0
  log "importing $BASE_TAR as $BASE_IMAGE ..."
  old="$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
  # The environment python:3.11-slim gives its users, which the Dockerfile relies on (PATH).
  podman import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python3"]' \
    --change "LABEL io.emrops.rootfs=$digest" \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  # The base it replaced, unless an image still uses it (podman refuses then).
  if [ -n "$old" ] && [ "$old" != "$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")" ]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
}

# --- pip as this machine uses it --------------------------------------------------------------

# pip's network settings here (config files and PIP_* variables, as `pip config list` shows
# them) become a pip.conf mounted at /etc/pip.conf during the build's RUN steps, which pip reads
# in and outside the virtualenv; files they name (a CA bundle, a wheel folder) are mounted at
# the same path. Only during the build: nothing of it is committed to the image. Proxy variables
# reach the RUN steps without help (podman build passes http_proxy and friends by default).
PIP_KEYS=" index-url extra-index-url trusted-host cert client-cert find-links proxy timeout default-timeout retries no-index "

pip_settings() {
  local python
  python="$(command -v python3 || true)"
  if [ -n "$python" ]; then "$python" -m pip config list 2>/dev/null || true; fi
}

# Writes $1 (a pip.conf) and prints podman's --volume arguments, one a line.
pip_build_mounts() {
  local conf="$1" line key value section name
  declare -A from_files=() from_env=()
  while IFS= read -r line; do
    key="${line%%=*}"
    value="${line#*=}"
    value="${value#\'}"
    value="${value%\'}"
    section="${key%%.*}"
    name="${key#*.}"
    [[ "$PIP_KEYS" == *" $name "* ]] || continue
    case "$section" in
      :env:) from_env[$name]="$value" ;;
      global) from_files[$name]="$value" ;;
    esac
  done < <(pip_settings)
  # pip lets a PIP_* variable win over the files.
  declare -A chosen=()
  for name in "${!from_files[@]}"; do chosen[$name]="${from_files[$name]}"; done
  for name in "${!from_env[@]}"; do chosen[$name]="${from_env[$name]}"; done
  {
    echo "[global]"
    for name in "${!chosen[@]}"; do echo "$name = ${chosen[$name]}"; done
  } >"$conf"
  echo "$conf:/etc/pip.conf:ro"
  for name in cert client-cert find-links; do
    for value in ${chosen[$name]:-}; do
      if [[ "$value" == /* ]] && [ -e "$value" ]; then echo "$value:$value:ro"; fi
    done
  done
}

# --- the image --------------------------------------------------------------------------------

# The files of the build context (as deploy/Dockerfile.dockerignore keeps them), the Dockerfile
# and the base, hashed: the image is rebuilt when this changes.
inputs_hash() {
  local base_id="$1"
  {
    echo "base $base_id"
    cd "$ROOT"
    find operator -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path '*.egg-info/*' -print0 \
      | sort -z | xargs -0 sha256sum
    sha256sum pyproject.toml README.md deploy/requirements.lock deploy/Dockerfile deploy/Dockerfile.dockerignore
  } | sha256sum | cut -c1-64
}

build_image() {
  local base="$1" hash="$2" nofile nproc line
  local mounts=()
  while IFS= read -r line; do mounts+=(--volume "$line"); done < <(pip_build_mounts "$WORK/pip.conf")
  # podman's default ulimits exceed the hard limits of some machines (and fail there): stay within.
  nofile="$(ulimit -Hn)"
  [ "$nofile" = unlimited ] && nofile=1048576
  nproc="$(ulimit -Hu)"
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  local began=$SECONDS
  log "building $IMAGE on $base (podman build) ..."
  # runc: crun refuses hybrid cgroup hierarchies. Host network: the RUN steps reach the package
  # index as this machine does.
  # No --layers: a changed input reruns the pip step anyway, and kept layers would only pile up as
  # untagged images in the store.
  (cd "$ROOT" && podman build --runtime runc --network host --layers=false \
    --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
    -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore \
    --build-arg "PYTHON_IMAGE=$base" --label "$INPUTS_LABEL=$hash" \
    "${mounts[@]}" -t "$IMAGE" .) >&2
  log "built $IMAGE in $((SECONDS - began)) s"
  # The images this one replaced, now untagged (also earlier ones a container still used then);
  # only ours, by their label: nothing else of the shared store is pruned.
  local stale
  for stale in $(podman images --quiet --filter dangling=true --filter "label=$INPUTS_LABEL"); do
    podman rmi "$stale" >/dev/null 2>&1 || true
  done
}

write_archive() {
  local id
  id="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
  [ -f "$ARCHIVE" ] && [ "$(cat "$ARCHIVE.id" 2>/dev/null)" = "$id" ] && return 0
  log "writing $ARCHIVE (podman save --format oci-archive) ..."
  mkdir -p "$(dirname "$ARCHIVE")"
  rm -f "$ARCHIVE.tmp"
  podman save --format oci-archive -o "$ARCHIVE.tmp" "$IMAGE" >&2
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  echo "$id" >"$ARCHIVE.id"
}

main() {
  [ -n "$APP_VERSION" ] || die "no appVersion in deploy/helm/emrops/Chart.yaml"
  ensure_tools podman buildah runc
  mkdir -p "$CACHE"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  # One build at a time (a test and `make image` may start together); the others wait and reuse it.
  exec 9>"$CACHE/image.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/image.lock; waiting ..."
    flock 9
  fi
  local base="${PYTHON_IMAGE:-}"
  if [ -z "$base" ]; then
    build_base_tar
    import_base
    base="$BASE_IMAGE"
  fi
  local base_id hash current
  base_id="$(podman image inspect --format '{{.Id}}' "$base" 2>/dev/null || echo "$base")"
  hash="$(inputs_hash "$base_id")"
  current="$(podman image inspect --format "{{ index .Labels \"$INPUTS_LABEL\" }}" "$IMAGE" 2>/dev/null || true)"
  if [ "$current" = "$hash" ]; then
    log "$IMAGE is up to date"
  else
    build_image "$base" "$hash"
  fi
  write_archive
  log "$IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"
  echo "IMAGE_ARCHIVE=$ARCHIVE"
  echo "IMAGE=$IMAGE"
}

# Sourced (by its unit tests), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
