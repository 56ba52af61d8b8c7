#!/usr/bin/env bash
# Builds the Kubernetes server binaries and etcd pinned in this folder's Go modules into the
# cache (outside the repository), once per machine; a second run builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CHAOS_DRILL_CACHE:-$HOME/.cache/chaos-drill}

pinned() {  # pinned MODFILE MODULE -> version without the leading v
  awk -v m="$2" '$1 == m {sub("^v", "", $2); print $2}' "$1"
}

build() {  # build NAME VERSION MODULE_DIR LDFLAGS TARGET...
  local name=$1 version=$2 dir=$3 ldflags=$4; shift 4
  local out="$cache/$name-v$version/bin"
  if [ -f "$out/.complete" ]; then
    echo "==> $name v$version: already built in $out"
    return
  fi
  mkdir -p "$out"
  echo "==> $name v$version: building $(basename -a "$@" | tr '\n' ' ')into $out"
  echo "    (cold: about 10 minutes on 2 cores; a line per 100 packages compiled)"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 go build -v -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@" 2>&1) \
    | awk '{ n++; if (n % 100 == 0) { printf "    %d packages (%s)\n", n, $0; fflush() } }'
  for target in "$@"; do
    local binary
    binary=$(basename "${target%/v[0-9]*}")  # go names a .../server/v3 main "server"
    [ -x "$out/$binary" ] || { echo "build failed: $binary missing in $out" >&2; exit 1; }
  done
  touch "$out/.complete"
  echo "==> $name v$version: built in $((SECONDS - start))s"
}

k8s=$(pinned "$here/go.mod" k8s.io/kubernetes)
stamp=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $p.gitVersion=v$k8s -X $p.gitMajor=${k8s%%.*} -X $p.gitMinor=$(echo "$k8s" | cut -d. -f2)"
  stamp+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
components=()
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  components+=("k8s.io/kubernetes/cmd/$c")
done
build kubernetes "$k8s" "$here" "$stamp" "${components[@]}"

etcd=$(pinned "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
build etcd "$etcd" "$here/etcd" "" go.etcd.io/etcd/server/v3
[ -x "$cache/etcd-v$etcd/bin/etcd" ] || cp "$cache/etcd-v$etcd/bin/server" "$cache/etcd-v$etcd/bin/etcd"
