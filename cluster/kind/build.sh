#!/usr/bin/env bash
# Builds everything --provider kind needs into the cache (outside the repository), keyed by its
# inputs: Debian's docker.io installed but not started, kind, kubeadm, kubectl, crictl, CoreDNS,
# pause, and the node image chaosdrill.local/kind-node:vK8S as a `docker load` directory.
# Warm, it only checks. Steps can be named: build.sh [docker] [tools] [node].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
. "$repo/cluster/build/lib.sh"

KIND_VERSION=0.33.0
CRICTL_VERSION=1.34.0
SUITE=bookworm
MIRROR=${CHAOS_DRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_PACKAGES="systemd dbus conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz bash ca-certificates jq procps containerd runc containernetworking-plugins"
k8s=$(pinned "$repo/cluster/build/go.mod" k8s.io/kubernetes)
etcd=$(pinned "$repo/cluster/build/etcd/go.mod" go.etcd.io/etcd/server/v3)
coredns=$(pinned "$here/coredns/go.mod" github.com/coredns/coredns)
metrics=$(pinned "$repo/cluster/build/metrics-server/go.mod" sigs.k8s.io/metrics-server)
PYTHON=${PYTHON:-$repo/.venv/bin/python}
coredns_key=$(coredns_key)

module_dir() {  # module_dir MODULE@VERSION -> its directory in the Go module cache
  (cd / && GOFLAGS=-mod=mod go mod download -json "$1" | awk -F'"' '$2 == "Dir" {print $4}')
}

step_docker() {
  if dpkg -s docker.io >/dev/null 2>&1; then
    echo "==> docker.io: installed ($(dpkg-query -W -f '${Version}' docker.io))"
    return
  fi
  echo "==> docker.io: installing Debian's package without starting dockerd"
  # policy-rc.d exiting 101 keeps the package from starting dockerd; the host's own comes back
  local saved=""
  if [ -e /usr/sbin/policy-rc.d ]; then
    saved=$(mktemp) && cp -p /usr/sbin/policy-rc.d "$saved"
  fi
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  # shellcheck disable=SC2064
  trap "if [ -n '$saved' ]; then mv '$saved' /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi" RETURN
  timeout 600 apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  echo "==> docker.io: installed $(dpkg-query -W -f '${Version}' docker.io)"
}

go_install() {  # go_install NAME VERSION PACKAGE
  local out="$cache/$1-v$2/bin"
  if [ -f "$out/.complete" ]; then echo "==> $1 v$2: already built in $out"; return; fi
  echo "==> $1 v$2: go install $3@v$2 into $out"
  local start=$SECONDS
  mkdir -p "$out"
  GOBIN=$out CGO_ENABLED=0 timeout 1200 go install -trimpath -ldflags "-s -w" "$3@v$2"
  touch "$out/.complete"
  echo "==> $1 v$2: built in $((SECONDS - start))s"
}

pause_source() {
  echo "$(module_dir "k8s.io/kubernetes@v$k8s")/build/pause"
}

build_pause() {
  local src version out
  src=$(pause_source)
  version=$(awk '$1 == "TAG" {print $3}' "$src/Makefile")
  out="$cache/pause-$version/bin"
  if [ -f "$out/.complete" ]; then echo "==> pause $version: already built in $out"; return; fi
  echo "==> pause $version: gcc -static from k8s.io/kubernetes@v$k8s/build/pause"
  mkdir -p "$out"
  gcc -Os -Wall -Werror -static -DVERSION="v$version-chaosdrill" -o "$out/pause" "$src/linux/pause.c"
  touch "$out/.complete"
}

step_tools() {
  go_install kind "$KIND_VERSION" sigs.k8s.io/kind
  go_install crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  build kubernetes-tools "$k8s" "$repo/cluster/build" "$(kubernetes_stamp "$k8s")" \
    k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl
  build_coredns
  build_pause
}

make_rootfs() {  # make_rootfs DIR: Debian SUITE minbase plus NODE_PACKAGES, nothing started
  local root=$1
  timeout 900 debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" \
    | awk '/^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) / {next} {print "    " $0; fflush()}'
  cat > "$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
SOURCES
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  trap "umount '$root/proc' 2>/dev/null || true" RETURN
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive timeout 900 chroot "$root" sh -c "apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends $(echo $NODE_PACKAGES) >/dev/null &&
    apt-get clean && rm -rf /var/lib/apt/lists/*"
  rm -f "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
}

step_rootfs() {
  local key dir
  key=$(printf '%s\n' "$SUITE" "$MIRROR" "$NODE_PACKAGES" "$(declare -f make_rootfs)" | sha256sum | cut -c1-12)
  dir="$cache/kind-rootfs-$SUITE-$key"
  rootfs=$dir/root
  if [ -f "$dir/.complete" ]; then echo "==> node root filesystem: already built in $dir"; return; fi
  echo "==> node root filesystem: debootstrap $SUITE minbase + Debian packages into $dir"
  echo "    (cold: about 2 minutes)"
  local start=$SECONDS
  rm -rf "$dir" && mkdir -p "$dir"
  make_rootfs "$dir/root"
  touch "$dir/.complete"
  echo "==> node root filesystem: built in $((SECONDS - start))s ($(du -sh "$dir" | cut -f1))"
}

make_node() {  # make_node ROOT: kind's base files and our binaries into a copy of the rootfs
  local root=$1 files
  files=$(module_dir "sigs.k8s.io/kind@v$KIND_VERSION")/images/base/files
  install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
  mkdir -p "$root/kind/bin" "$root/kind/manifests" "$root/etc/kubernetes/manifests"
  install -m 0644 "$files/kind/README.txt" "$root/kind/"
  install -m 0755 "$files"/kind/bin/* "$root/kind/bin/"
  install -m 0644 "$files/etc/crictl.yaml" "$root/etc/"
  install -m 0644 -D -t "$root/etc/containerd" "$files/etc/containerd/config.toml"
  install -m 0644 -D -t "$root/etc/default" "$files/etc/default/kubelet"
  install -m 0644 -D -t "$root/etc/sysctl.d" "$files"/etc/sysctl.d/*
  find "$files/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 -t "$root/etc/systemd/system" {} +
  install -m 0644 -D -t "$root/etc/systemd/system/kubelet.service.d" \
    "$files"/etc/systemd/system/kubelet.service.d/*
  # as kind's images/base/Dockerfile: no unit of Debian's starts unless kind asks for it
  find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* \
    "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* \
    "$root"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >> "$root/etc/systemd/journald.conf"
  ln -sf /usr/lib/systemd/systemd "$root/sbin/init"
  chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    2>&1 | sed 's/^/    /'
  chroot "$root" systemctl mask systemd-binfmt.service 2>&1 | sed 's/^/    /'
  # Debian's containerd and CNI plugins live where kind's own builds do not
  ln -sf /usr/bin/containerd "$root/usr/local/bin/containerd"
  mkdir -p "$root/opt/cni" && ln -sfn /usr/lib/cni "$root/opt/cni/bin"
  chroot "$root" ctr oci spec \
    | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
    | jq 'del(.process.rlimits)' > "$root/etc/containerd/cri-base.json"
  # the sandbox image kubeadm v1.34 names; this host's root lacks CAP_SYS_RESOURCE, so
  # containerd must not raise oom_score_adj (the local provider does the same)
  sed -i -e "s|sandbox_image = .*|sandbox_image = \"registry.k8s.io/pause:$pause_version\"|" \
    -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' \
    "$root/etc/containerd/config.toml"
  install -m 0755 "$cache/kubernetes-v$k8s/bin/kubelet" "$cache/kubernetes-tools-v$k8s/bin/kubeadm" \
    "$cache/kubernetes-tools-v$k8s/bin/kubectl" "$root/usr/bin/"
  install -m 0755 "$cache/crictl-v$CRICTL_VERSION/bin/crictl" "$root/usr/local/bin/"
  echo "v$k8s" > "$root/kind/version"
  cat > "$root/kind/manifests/default-storage.yaml" <<'STORAGE'
# host-path based default storage class
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  namespace: kube-system
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
STORAGE
}

preload() {  # preload ROOT ARCHIVE_DIR: import image archives into ROOT's containerd store
  local root=$1 archives=$2 run=/run/chaos-drill/kind-build pid
  rm -rf "$run" && mkdir -p "$run"
  cat > "$run/config.toml" <<CONFIG
version = 2
root = "$root/var/lib/containerd"
state = "$run/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]
[grpc]
  address = "$run/containerd.sock"
CONFIG
  "$root/usr/bin/containerd" --config "$run/config.toml" > "$run/containerd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -S "$run/containerd.sock" ] && break; sleep 0.1; done
  local a
  for a in "$archives"/*.tar; do
    timeout 120 "$root/usr/bin/ctr" --address "$run/containerd.sock" --namespace k8s.io images \
      import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests "$a" \
      | sed 's/^/    /'
  done
  kill "$pid" && wait "$pid" || true
  rm -rf "$run"
}

step_node() {
  [ -x "$cache/kubernetes-v$k8s/bin/kubelet" ] && [ -x "$cache/etcd-v$etcd/bin/etcd" ] \
    || { echo "Kubernetes v$k8s and etcd v$etcd are not built in $cache: run 'make kubernetes'" >&2; exit 2; }
  step_rootfs
  local src key dir work start=$SECONDS
  src=$(pause_source)
  pause_version=$(awk '$1 == "TAG" {print $3}' "$src/Makefile")
  # the sample app's images are made of the host's busybox, metrics-server's of its build
  key=$(cat "$0" "$repo/chaos/images/node.py" "$repo/chaos/images/sample.py" \
        "$repo/chaos/images/archive.py" "$repo/chaos/cluster/addons.py" \
        <(echo "$rootfs $k8s $etcd $coredns_key $CRICTL_VERSION $KIND_VERSION $pause_version") \
        <(stat -L -c '%s %Y' /bin/busybox "$cache/metrics-server-v$metrics/bin/metrics-server") \
        | sha256sum | cut -c1-12)
  dir="$cache/kind-node-v$k8s"
  if [ "$(cat "$dir/.key" 2>/dev/null)" = "$key" ]; then
    echo "==> node image chaosdrill.local/kind-node:v$k8s: already built in $dir"
    return
  fi
  echo "==> node image chaosdrill.local/kind-node:v$k8s: assembling in $cache/kind-work"
  work="$cache/kind-work/node-$key"
  rm -rf "$cache/kind-work" && mkdir -p "$work"  # and what a failed build left
  cp -a "$rootfs" "$work/root"
  make_node "$work/root"
  echo "    control-plane image archives"
  "$PYTHON" -m chaos.images.node archives "$work/images" --rootfs "$work/root" \
    --kubernetes-bin "$cache/kubernetes-v$k8s/bin" --etcd "$cache/etcd-v$etcd/bin/etcd" \
    --etcd-version "$etcd" --coredns "$cache/coredns-v$coredns-$coredns_key/bin/coredns" \
    --coredns-version "$coredns" --pause "$cache/pause-$pause_version/bin/pause" \
    --pause-version "$pause_version"
  echo "    the sample app's and metrics-server's image archives (every cluster runs them)"
  "$PYTHON" -c 'import sys; from pathlib import Path; from chaos.images import sample
from chaos.cluster import addons
sample.build_archives(Path(sys.argv[1])); addons.build_archives(Path(sys.argv[1]), ("metrics-server",))' \
    "$work/images"
  echo "    preloading them into the node's containerd"
  preload "$work/root" "$work/images"
  echo "    packing the node image"
  "$PYTHON" -m chaos.images.node pack "$work/root" "$work/image"
  echo "$key" > "$work/image/.key"
  rm -rf "$dir" && mv "$work/image" "$dir" && rm -rf "$work"
  echo "==> node image: built in $((SECONDS - start))s ($(du -sh "$dir" | cut -f1) in $dir)"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(docker tools node)
for s in "${steps[@]}"; do "step_$s"; done
echo "==> kind: ready"
