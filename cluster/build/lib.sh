# Shared by the build scripts under cluster/ (sourced, not run): the cache root, the pinned
# versions in a go.mod, a Go build into the cache that runs once per machine, and a Debian root
# filesystem (debootstrap minbase plus packages) built once per its inputs, for the images.
cache=${CHAOS_DRILL_CACHE:-$HOME/.cache/chaos-drill}
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
src_root=${CHAOS_DRILL_SOURCE_ROOT:-$repo_root}  # holds chaos/: the checkout, or site-packages

pinned() {  # pinned MODFILE MODULE -> version without the leading v
  awk -v m="$2" '$1 == "require" {$1 = ""; $0 = $0} $1 == m {sub("^v", "", $2); print $2}' "$1"
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
  echo "    (cold: minutes on 2 cores; a line per 100 packages compiled)"
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

kubernetes_stamp() {  # kubernetes_stamp VERSION -> the -X flags `kubectl version` reads
  local k8s=$1 p stamp=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $p.gitVersion=v$k8s -X $p.gitMajor=${k8s%%.*} -X $p.gitMinor=$(echo "$k8s" | cut -d. -f2)"
    stamp+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$stamp"
}

coredns_key() {  # coredns_key -> 12 hex digits naming the CoreDNS build by its inputs
  cat "$repo_root"/cluster/kind/coredns/{go.mod,go.sum,main.go} | sha256sum | cut -c1-12
}

build_coredns() {  # CoreDNS for the local cluster's kube-dns and the kind node image, one build
  local dir="$repo_root/cluster/kind/coredns"
  build coredns "$(pinned "$dir/go.mod" github.com/coredns/coredns)-$(coredns_key)" "$dir" "" \
    chaosdrill.dev/cluster/kind/coredns
}

debian_root() {  # debian_root DIR SUITE MIRROR PACKAGES: debootstrap --variant=minbase SUITE into
  # DIR plus PACKAGES (no recommends), no service started, apt's lists and caches dropped
  local root=$1 suite=$2 mirror=$3 packages=$4
  timeout 900 debootstrap --variant=minbase "$suite" "$root" "$mirror" \
    | awk '/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) / {next} {print "    " $0; fflush()}'
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  DEBIAN_FRONTEND=noninteractive timeout 900 chroot "$root" sh -c "apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends $packages >/dev/null &&
    apt-get clean && rm -rf /var/lib/apt/lists/*"
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
}

cached_root() {  # cached_root NAME SUITE MIRROR PACKAGES MAKE [FUNCTION...]: sets rootfs to
  # $cache/NAME-rootfs-SUITE-KEY/root, made by `MAKE DIR` (which calls debian_root) unless built;
  # KEY hashes the suite, mirror, packages and the code of MAKE and of each FUNCTION it calls
  local name=$1 suite=$2 mirror=$3 packages=$4 make=$5 key dir start=$SECONDS
  shift 5
  key=$(printf '%s\n' "$suite" "$mirror" "$packages" "$(declare -f "$make" debian_root "$@")" \
        | sha256sum | cut -c1-12)
  dir="$cache/$name-rootfs-$suite-$key"
  rootfs=$dir/root
  if [ -f "$dir/.complete" ]; then echo "==> $name root filesystem: already built in $dir"; return; fi
  echo "==> $name root filesystem: debootstrap $suite minbase + $packages into $dir"
  echo "    (cold: about a minute)"
  rm -rf "$dir" && mkdir -p "$dir"
  "$make" "$dir/root"
  touch "$dir/.complete"
  echo "==> $name root filesystem: built in $((SECONDS - start))s ($(du -sh "$dir" | cut -f1))"
}
