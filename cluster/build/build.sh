#!/usr/bin/env bash
# Builds the Kubernetes server binaries pinned in go.mod into the cache, once per machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1=="k8s.io/kubernetes" {sub("^v", "", $2); print $2}' "$here/go.mod")
cache=${CHAOS_DRILL_CACHE:-$HOME/.cache/chaos-drill}
out="$cache/kubernetes-v$version/bin"
components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

if [ -f "$out/.complete" ]; then
  echo "kubernetes v$version: already built in $out"
  exit 0
fi
mkdir -p "$out"
pkg=k8s.io/component-base/version
cpkg=k8s.io/client-go/pkg/version
stamp=""
for p in $pkg $cpkg; do
  stamp+=" -X $p.gitVersion=v$version -X $p.gitMajor=${version%%.*}"
  stamp+=" -X $p.gitMinor=$(echo "$version" | cut -d. -f2) -X $p.gitTreeState=clean"
  stamp+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
echo "kubernetes v$version: building ${components[*]} into $out"
echo "(a cold build takes 20-40 minutes on 2 cores; 'go build -v' lists each package as it compiles)"
cd "$here"
targets=()
for c in "${components[@]}"; do targets+=("k8s.io/kubernetes/cmd/$c"); done
start=$(date +%s)
CGO_ENABLED=0 go build -v -trimpath -ldflags "-s -w$stamp" -o "$out/" "${targets[@]}" 2>&1 \
  | awk '{ n++; if (n % 100 == 0) { printf "  compiled %d packages (latest: %s)\n", n, $0; fflush() } }'
for c in "${components[@]}"; do
  [ -x "$out/$c" ] || { echo "build failed: $out/$c missing" >&2; exit 1; }
done
touch "$out/.complete"
echo "kubernetes v$version: built in $(( $(date +%s) - start ))s"
