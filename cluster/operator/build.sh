#!/usr/bin/env bash
# Builds the operator image chaosdrill.local/operator:KEY as a `docker save` archive in the cache
# (outside the repository), each step keyed by its inputs, so a warm run only checks:
#   rootfs  debootstrap --variant=minbase bookworm + Debian's python3 (pycs by content hash)
#   deps    the pinned wheels of requirements.txt (pip --target, --no-deps), compiled the same way
#   image   Debian's python3.11 with only the libraries it loads, the deps and chaos/ in one
#           deterministic layer (python -m chaos.images.operator pack)
# Prints the archive's path last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
. "$repo/cluster/build/lib.sh"

SUITE=bookworm
MIRROR=${CHAOS_DRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES="python3"
PYTHON=${PYTHON:-$repo/.venv/bin/python}

compile_tree() {  # compile_tree ROOT DIR...: pycs checked by nothing but their source's hash, so
  # they are the same on every build and valid on a read-only root with timestamp-free files
  local root=$1; shift
  find "${@/#/$root}" -name __pycache__ -type d -prune -exec rm -rf {} +
  chroot "$root" /usr/bin/python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
    "$@" >/dev/null
}

make_rootfs() {  # make_rootfs DIR: Debian SUITE minbase plus PACKAGES, pycs compiled
  debian_root "$1" "$SUITE" "$MIRROR" "$PACKAGES"
  compile_tree "$1" /usr/lib/python3.11
  mkdir -p "$1/app/lib"  # where the deps are mounted while the image is packed
}

step_rootfs() {
  cached_root operator "$SUITE" "$MIRROR" "$PACKAGES" make_rootfs compile_tree
}

with_deps_mounted() {  # with_deps_mounted CMD...: the deps at /app/lib inside the rootfs
  mount --bind "$deps" "$rootfs/app/lib"
  local status=0
  "$@" || status=$?
  umount "$rootfs/app/lib"
  return $status
}

step_deps() {
  local key dir start=$SECONDS
  key=$(cat "$here/requirements.txt" <(echo "$rootfs") <(declare -f step_deps compile_tree) \
        | sha256sum | cut -c1-12)
  dir="$cache/operator-deps-$key"
  deps=$dir/lib
  if [ -f "$dir/.complete" ]; then echo "==> operator Python dependencies: already in $dir"; return; fi
  echo "==> operator Python dependencies: the wheels of cluster/operator/requirements.txt into $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  timeout 600 "$PYTHON" -m pip install -q --no-deps --only-binary=:all: --no-compile \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none --target "$deps" -r "$here/requirements.txt"
  rm -rf "$deps/bin"
  with_deps_mounted compile_tree "$rootfs" /app/lib
  touch "$dir/.complete"
  echo "==> operator Python dependencies: done in $((SECONDS - start))s ($(du -sh "$dir" | cut -f1))"
}

chaos_files() {  # chaos/'s files but the shipped data an installed wheel keeps in
  # chaos/resources/ (manifests/crds go in apart): the same image from a checkout and a wheel
  (cd "$src_root" && find chaos -type f ! -path '*__pycache__*' ! -name '*.pyc' \
     ! -path 'chaos/resources/manifests/*' ! -path 'chaos/resources/dashboards/*' \
     ! -path 'chaos/resources/cluster/*' -print0 | LC_ALL=C sort -z)
}

source_key() {  # what the image holds of this repository, and how it is packed
  { (cd "$src_root" && chaos_files | xargs -0 sha256sum)
    (cd "$repo" && find manifests/crds -type f | LC_ALL=C sort | xargs sha256sum
     sha256sum cluster/operator/build.sh); } | sha256sum | cut -c1-12
}

step_image() {
  local key dir work start=$SECONDS
  key=$(printf '%s\n' "$rootfs" "$deps" "$(source_key)" | sha256sum | cut -c1-12)
  dir="$cache/operator-image-$key"
  archive=$dir/operator.tar
  if [ -f "$dir/.complete" ]; then echo "==> operator image: already built in $dir"; return; fi
  echo "==> operator image chaosdrill.local/operator:$key: packing into $dir"
  work="$cache/operator-work"
  rm -rf "$work" "$cache"/operator-image-* && mkdir -p "$work/app/manifests" "$dir"  # older keys too
  (cd "$src_root" && chaos_files | xargs -0 cp --parents -t "$work/app")
  cp -r "$repo/manifests/crds" "$work/app/manifests/"
  mkdir -p "$rootfs/app/src"
  mount --bind "$work/app" "$rootfs/app/src"
  local status=0
  { compile_tree "$rootfs" /app/src/chaos &&
    with_deps_mounted "$PYTHON" -m chaos.images.operator pack "$rootfs" "$archive" \
      --reference "chaosdrill.local/operator:$key"; } || status=$?
  umount "$rootfs/app/src"
  [ $status -eq 0 ] || exit $status
  rm -rf "$work"
  touch "$dir/.complete"
  echo "==> operator image: built in $((SECONDS - start))s ($(du -h "$archive" | cut -f1) archive)"
}

step_rootfs >&2
step_deps >&2
step_image >&2
echo "$archive"
