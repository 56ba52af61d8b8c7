#!/usr/bin/env bash
# Builds the in-cluster Prometheus image chaosdrill.local/prometheus:KEY as a `docker save`
# archive in the cache (outside the repository), each step keyed by its inputs, so a warm run
# only checks:
#   rootfs  debootstrap --variant=minbase bookworm + Debian's prometheus (cluster/build/lib.sh)
#   image   /usr/bin/prometheus with only the libraries it loads, in one deterministic layer
#           (python -m chaos.images.prometheus pack)
# Prints the archive's path last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
. "$repo/cluster/build/lib.sh"

SUITE=bookworm
MIRROR=${CHAOS_DRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES="prometheus"
PYTHON=${PYTHON:-$repo/.venv/bin/python}

make_rootfs() {  # make_rootfs DIR: Debian SUITE minbase plus PACKAGES
  debian_root "$1" "$SUITE" "$MIRROR" "$PACKAGES"
}

step_image() {
  local key dir start=$SECONDS
  key=$(cat "$0" "$src_root/chaos/images/prometheus.py" "$src_root/chaos/images/operator.py" \
        <(echo "$rootfs") | sha256sum | cut -c1-12)
  dir="$cache/prometheus-image-$key"
  archive=$dir/prometheus.tar
  if [ -f "$dir/.complete" ]; then echo "==> prometheus image: already built in $dir"; return; fi
  echo "==> prometheus image chaosdrill.local/prometheus:$key: packing into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  "$PYTHON" -m chaos.images.prometheus pack "$rootfs" "$archive" \
    --reference "chaosdrill.local/prometheus:$key"
  touch "$dir/.complete"
  echo "==> prometheus image: built in $((SECONDS - start))s ($(du -h "$archive" | cut -f1) archive)"
}

cached_root prometheus "$SUITE" "$MIRROR" "$PACKAGES" make_rootfs >&2
step_image >&2
echo "$archive"
