#!/usr/bin/env bash
# Builds the Kubernetes server binaries, etcd, metrics-server and CoreDNS pinned in the Go
# modules here and in cluster/kind/coredns into the cache (outside the repository), once per
# machine; a second run builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

k8s=$(pinned "$here/go.mod" k8s.io/kubernetes)
components=()
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  components+=("k8s.io/kubernetes/cmd/$c")
done
build kubernetes "$k8s" "$here" "$(kubernetes_stamp "$k8s")" "${components[@]}"

etcd=$(pinned "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)
build etcd "$etcd" "$here/etcd" "" go.etcd.io/etcd/server/v3
[ -x "$cache/etcd-v$etcd/bin/etcd" ] || cp "$cache/etcd-v$etcd/bin/server" "$cache/etcd-v$etcd/bin/etcd"

metrics=$(pinned "$here/metrics-server/go.mod" sigs.k8s.io/metrics-server)
build metrics-server "$metrics" "$here/metrics-server" \
  "-X k8s.io/client-go/pkg/version.gitVersion=v$metrics" sigs.k8s.io/metrics-server/cmd/metrics-server

build_coredns
