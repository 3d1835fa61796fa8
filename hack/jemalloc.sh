#!/usr/bin/env bash
# Make sure libjemalloc2 is installed: the operator's image allocates with it (deploy/Dockerfile),
# and `make bench` runs the operator the same way (bench/allocator.py). Installs it with apt-get
# when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail

for dir in /usr/local/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib; do
  [ -e "$dir/libjemalloc.so.2" ] && exit 0
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "jemalloc: installing libjemalloc2 (apt-get) ..." >&2
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libjemalloc2 >&2
  exit 0
fi
echo "jemalloc: libjemalloc.so.2 not found; install libjemalloc2 (Debian/Ubuntu: sudo apt-get install -y libjemalloc2)," >&2
echo "jemalloc: or run the bench with BENCH_ARGS=--allocator=python (not what the image runs)" >&2
exit 1
