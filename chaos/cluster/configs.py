"""Writes the local cluster's certificates, kubeconfigs and component configs, and builds the
command line of every component."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from chaos.cluster import layout as L
from chaos.cluster import network, pki, tuning
from chaos.cluster.layout import Layout, Node

PAUSE_IMAGE = "chaosdrill.local/pause:1"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"


def write_pki(lay: Layout) -> None:
    """The CA, the serving and client certs of every component, and the ServiceAccount keys."""
    d = pki.private_dir(lay.pki)
    if (d / "ca.crt").exists():
        return
    pki.make_ca(d)
    pki.make_service_account_keys(d)
    api_names = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")
    requests = [
        pki.CertRequest("apiserver", "kube-apiserver", dns_names=api_names,
                        ip_addresses=(L.LOOPBACK, L.NODE_IP, network.API_SERVICE_IP),
                        server=True, client=False),
        pki.CertRequest("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                        ("system:masters",)),
        pki.CertRequest("admin", "chaos-drill-admin", ("system:masters",)),
        pki.CertRequest("controller-manager", "system:kube-controller-manager"),
        pki.CertRequest("scheduler", "system:kube-scheduler"),
        pki.CertRequest("proxy", "system:kube-proxy"),
    ]
    for node in lay.nodes:
        requests.append(pki.CertRequest(f"{node.name}-client", f"system:node:{node.name}",
                                        ("system:nodes",)))
        requests.append(pki.CertRequest(f"{node.name}-serving", node.name, dns_names=(node.name,),
                                        ip_addresses=(L.NODE_IP,), server=True, client=False))
    requests.append(METRICS_SERVER_CERT)
    for request in requests:
        pki.issue(d, request)
    write_front_proxy_pki(lay)
    write_etcd_pki(lay)


METRICS_SERVER_NAMES = ("metrics-server.kube-system.svc",
                        "metrics-server.kube-system.svc.cluster.local")
METRICS_SERVER_CERT = pki.CertRequest("metrics-server", "metrics-server",
                                      dns_names=METRICS_SERVER_NAMES, server=True, client=False)
FRONT_PROXY_CLIENT = "front-proxy-client"


def write_front_proxy_pki(lay: Layout) -> None:
    """A CA of its own for the aggregation layer: kube-apiserver proxies to metrics-server with
    the front-proxy client cert, and metrics-server trusts the user headers only from it."""
    d = pki.private_dir(lay.front_proxy_pki)
    pki.make_ca(d)
    pki.issue(d, pki.CertRequest(FRONT_PROXY_CLIENT, FRONT_PROXY_CLIENT))


ETCD_CLIENT = "apiserver-etcd-client"


def write_etcd_pki(lay: Layout) -> None:
    """A CA of etcd's own: etcd serves (clients and its peer port) with the etcd cert and
    accepts only clients it signed, which is the API server alone."""
    d = pki.private_dir(lay.etcd_pki)
    pki.make_ca(d, "chaos-drill-etcd-ca")
    pki.issue(d, pki.CertRequest("etcd", "etcd", dns_names=("localhost",),
                                 ip_addresses=(L.LOOPBACK,), server=True, client=True))
    pki.issue(d, pki.CertRequest(ETCD_CLIENT, "kube-apiserver-etcd-client"))


def write_kubeconfig(path: Path, lay: Layout, cert: str) -> None:
    """A kubeconfig for the local API server that authenticates with the client cert CERT."""
    pk = lay.pki
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "chaos-drill-local",
        "clusters": [{"name": "chaos-drill-local", "cluster": {
            "server": lay.api_url, "certificate-authority": str(pk / "ca.crt")}}],
        "users": [{"name": cert, "user": {
            "client-certificate": str(pk / f"{cert}.crt"), "client-key": str(pk / f"{cert}.key")}}],
        "contexts": [{"name": "chaos-drill-local", "context": {
            "cluster": "chaos-drill-local", "user": cert}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))


def write_all(lay: Layout) -> None:
    write_pki(lay)
    lay.config.mkdir(parents=True, exist_ok=True)
    write_kubeconfig(lay.kubeconfig, lay, "admin")
    for name in ("controller-manager", "scheduler", "proxy"):
        write_kubeconfig(lay.config / f"{name}.kubeconfig", lay, name)
    (lay.config / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(lay)))
    for node in lay.nodes:
        node.state.mkdir(parents=True, exist_ok=True)
        write_kubeconfig(node.state / "kubelet.kubeconfig", lay, f"{node.name}-client")
        (node.state / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(lay, node)))
        (node.state / "containerd.toml").write_text(containerd_config(node, lay.registry_hosts))
        cni = node.state / "cni"
        cni.mkdir(exist_ok=True)
        (cni / "10-chaosdrill.conflist").write_text(
            json.dumps(network.cni_config(node.index, node.state), indent=1))


def containerd_config(node: Node, registry_hosts: Path) -> str:
    """NODE's containerd; registries' hosts.toml (their CAs) are read from REGISTRY_HOSTS."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{node.state / 'containerd'}"
state = "{node.run / 'containerd'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{node.socket}"
[ttrpc]
  address = "{node.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{node.state / 'opt'}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "{L.LOOPBACK}"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # this machine's root may not lower oom_score_adj (no CAP_SYS_RESOURCE); clamp instead
  restrict_oom_score_adj = true
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{node.state / 'cni'}"
[{cri}.registry]
  config_path = "{registry_hosts}"
"""


def kubelet_config(lay: Layout, node: Node) -> dict[str, object]:
    pk = lay.pki
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": L.NODE_IP,
        "port": node.kubelet_port,
        "healthzBindAddress": L.LOOPBACK,
        "healthzPort": node.healthz_port,
        "readOnlyPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pk / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pk / f"{node.name}-serving.crt"),
        "tlsPrivateKeyFile": str(pk / f"{node.name}-serving.key"),
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/chaosdrill/{node.pod_cgroup}",
        "failSwapOn": False,
        "failCgroupV1": False,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "podLogsDir": str(node.state / "pod-logs"),
        "resolvConf": "",
        "clusterDNS": [network.DNS_SERVICE_IP],
        "clusterDomain": network.CLUSTER_DOMAIN,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "nodeStatusUpdateFrequency": "2s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "serializeImagePulls": False,
        "maxPods": 250,
        # DRA's start-up goroutine reads the node's capacity while the container manager still
        # writes it: "concurrent map iteration and map write" killed a kubelet at `up` here
        "featureGates": {"DynamicResourceAllocation": False},
    }


def kube_proxy_config(lay: Layout) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(lay.config / "proxy.kubeconfig")},
        "hostnameOverride": lay.nodes[0].name,
        "bindAddress": L.NODE_IP,
        "mode": "iptables",
        "clusterCIDR": network.POD_CIDR,
        "healthzBindAddress": f"{L.LOOPBACK}:{L.PROXY_HEALTHZ_PORT}",
        "metricsBindAddress": f"{L.LOOPBACK}:{L.PROXY_METRICS_PORT}",
        "nodePortAddresses": [f"{L.NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
    }


ETCD_URL = f"https://{L.LOOPBACK}:{L.ETCD_PORT}"


def etcd_command(lay: Layout) -> list[str]:
    """etcd over TLS on loopback, clients and peers alike proving themselves with a cert of
    etcd's CA: a local user cannot read or write the cluster's objects through it."""
    client, peer = ETCD_URL, f"https://{L.LOOPBACK}:{L.ETCD_PEER_PORT}"
    ca, cert, key = (str(lay.etcd_pki / name) for name in ("ca.crt", "etcd.crt", "etcd.key"))
    return [str(L.etcd_binary()), "--name", "local", "--data-dir", str(lay.state / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"local={peer}",
            "--client-cert-auth", "--trusted-ca-file", ca, "--cert-file", cert, "--key-file", key,
            "--peer-client-cert-auth", "--peer-trusted-ca-file", ca, "--peer-cert-file", cert,
            "--peer-key-file", key, "--log-level", "warn"]


def apiserver_command(lay: Layout) -> list[str]:
    pk = lay.pki
    return [str(L.bin_dir() / "kube-apiserver"),
            f"--etcd-servers={ETCD_URL}", f"--etcd-cafile={lay.etcd_pki / 'ca.crt'}",
            f"--etcd-certfile={lay.etcd_pki / f'{ETCD_CLIENT}.crt'}",
            f"--etcd-keyfile={lay.etcd_pki / f'{ETCD_CLIENT}.key'}",
            f"--secure-port={L.API_PORT}", f"--advertise-address={L.NODE_IP}",
            # the bridge only: host clients and pods (via the kubernetes Service) both reach it
            f"--bind-address={L.NODE_IP}", "--anonymous-auth=false",
            f"--service-cluster-ip-range={network.SERVICE_CIDR}",
            f"--client-ca-file={pk / 'ca.crt'}",
            f"--tls-cert-file={pk / 'apiserver.crt'}",
            f"--tls-private-key-file={pk / 'apiserver.key'}",
            f"--kubelet-client-certificate={pk / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pk / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pk / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pk / 'sa.pub'}",
            f"--service-account-signing-key-file={pk / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            "--default-not-ready-toleration-seconds=20",
            "--default-unreachable-toleration-seconds=20",
            *aggregation_flags(lay),
            "--profiling=false", "--v=1"]


def aggregation_flags(lay: Layout) -> list[str]:
    """The aggregation layer (metrics.k8s.io): who may set user headers, and the client cert
    kube-apiserver proxies with, straight to the endpoint's pod IP."""
    fp = lay.front_proxy_pki
    return [f"--requestheader-client-ca-file={fp / 'ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={fp / f'{FRONT_PROXY_CLIENT}.crt'}",
            f"--proxy-client-key-file={fp / f'{FRONT_PROXY_CLIENT}.key'}",
            "--enable-aggregator-routing=true"]


def _component_auth(lay: Layout, name: str) -> list[str]:
    kubeconfig = str(lay.config / f"{name}.kubeconfig")
    return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", f"--bind-address={L.LOOPBACK}",
            "--leader-elect=false", "--profiling=false", "--v=1"]


def controller_manager_command(lay: Layout) -> list[str]:
    pk = lay.pki
    return [str(L.bin_dir() / "kube-controller-manager"),
            *_component_auth(lay, "controller-manager"),
            f"--secure-port={L.CONTROLLER_MANAGER_PORT}",
            f"--service-account-private-key-file={pk / 'sa.key'}",
            f"--root-ca-file={pk / 'ca.crt'}",
            f"--cluster-signing-cert-file={pk / 'ca.crt'}",
            f"--cluster-signing-key-file={pk / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={network.SERVICE_CIDR}",
            "--node-monitor-period=2s", "--node-monitor-grace-period=16s",
            # each controller's own client fetches a token as it starts; at the default 20 qps
            # that throttling alone delays the ReplicaSet controller by ~4 s on `cluster up`
            "--kube-api-qps=100", "--kube-api-burst=200",
            f"--horizontal-pod-autoscaler-sync-period={tuning.current().hpa_sync_seconds}s"]


def scheduler_command(lay: Layout) -> list[str]:
    return [str(L.bin_dir() / "kube-scheduler"), *_component_auth(lay, "scheduler"),
            f"--secure-port={L.SCHEDULER_PORT}"]


def containerd_command(node: Node) -> list[str]:
    return ["containerd", "--config", str(node.state / "containerd.toml"), "--log-level", "warn"]


def kubelet_command(node: Node) -> list[str]:
    return [str(L.bin_dir() / "kubelet"),
            f"--config={node.state / 'kubelet.yaml'}",
            f"--kubeconfig={node.state / 'kubelet.kubeconfig'}",
            f"--hostname-override={node.name}", f"--node-ip={L.NODE_IP}",
            f"--root-dir={node.state / 'kubelet'}",
            f"--node-labels=chaosdrill.dev/node={node.name}", "--v=1"]


def kube_proxy_command(lay: Layout) -> list[str]:
    return [str(L.bin_dir() / "kube-proxy"), f"--config={lay.config / 'kube-proxy.yaml'}", "--v=1"]
