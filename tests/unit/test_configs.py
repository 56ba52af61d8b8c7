"""Component configs of the local cluster: each node's kubelet and containerd use that node's own
ports, cgroups, socket and state, and nothing two nodes write is shared by accident."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster import configs, network
from chaos.cluster import layout as L
from chaos.cluster.layout import Layout, Node
from chaos.images import sample as images


@pytest.fixture
def lay(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "state", tmp_path / "run")


def containerd(node: Node) -> dict[str, Any]:
    return tomllib.loads(configs.containerd_config(node, node.state.parent / "certs.d"))


def cri(node: Node) -> dict[str, Any]:
    plugin: dict[str, Any] = containerd(node)["plugins"]["io.containerd.grpc.v1.cri"]
    return plugin


def test_layout_ports_are_distinct(lay: Layout) -> None:
    """Layout.ports is a dict: two components on one port would silently drop one entry."""
    every = [L.API_PORT, L.ETCD_PORT, L.ETCD_PEER_PORT, L.CONTROLLER_MANAGER_PORT,
             L.SCHEDULER_PORT, L.PROXY_HEALTHZ_PORT, L.PROXY_METRICS_PORT]
    for node in lay.nodes:
        every += [node.kubelet_port, node.healthz_port]
    assert len(set(every)) == len(every)
    assert sorted(lay.ports) == sorted(every)


def test_nodes_have_their_own_paths(lay: Layout) -> None:
    one, two = lay.nodes
    assert (one.name, two.name) == ("node-1", "node-2")
    assert len({one.state, two.state, one.run, two.run}) == 4
    assert one.socket != two.socket and one.pod_cgroup != two.pod_cgroup


@pytest.mark.parametrize("index", [1, 2])
def test_kubelet_config_is_the_nodes_own(lay: Layout, index: int) -> None:
    node = lay.node(index)
    config = configs.kubelet_config(lay, node)
    assert config["kind"] == "KubeletConfiguration"
    assert config["port"] == node.kubelet_port
    assert config["healthzPort"] == node.healthz_port
    assert config["readOnlyPort"] == 0
    assert config["cgroupRoot"] == f"/chaosdrill/{node.name}-pods"
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["containerRuntimeEndpoint"] == f"unix://{node.run / 'containerd.sock'}"
    assert config["tlsCertFile"] == str(lay.pki / f"{node.name}-serving.crt")
    assert config["tlsPrivateKeyFile"] == str(lay.pki / f"{node.name}-serving.key")
    assert str(config["podLogsDir"]).startswith(f"{node.state}/")


def test_kubelets_share_no_port_cgroup_or_socket(lay: Layout) -> None:
    one, two = (configs.kubelet_config(lay, n) for n in lay.nodes)
    for key in ("port", "healthzPort", "cgroupRoot", "containerRuntimeEndpoint", "podLogsDir",
                "tlsCertFile"):
        assert one[key] != two[key], key


@pytest.mark.parametrize("index", [1, 2])
def test_kubelet_command_uses_the_nodes_files(lay: Layout, index: int) -> None:
    node = lay.node(index)
    command = configs.kubelet_command(node)
    assert f"--config={node.state / 'kubelet.yaml'}" in command
    assert f"--kubeconfig={node.state / 'kubelet.kubeconfig'}" in command
    assert f"--hostname-override={node.name}" in command
    assert f"--root-dir={node.state / 'kubelet'}" in command


@pytest.mark.parametrize("index", [1, 2])
def test_containerd_config_is_toml_for_the_nodes_socket_and_state(lay: Layout,
                                                                  index: int) -> None:
    node = lay.node(index)
    config = containerd(node)
    assert config["version"] == 2
    assert config["grpc"]["address"] == str(node.socket)
    assert config["ttrpc"]["address"] == f"{node.socket}.ttrpc"
    assert config["root"] == str(node.state / "containerd")
    assert config["state"] == str(node.run / "containerd")
    assert config["plugins"]["io.containerd.internal.v1.opt"]["path"] == str(node.state / "opt")
    assert cri(node)["cni"]["conf_dir"] == str(node.state / "cni")
    assert cri(node)["cni"]["bin_dir"] == "/usr/lib/cni"


def test_containerd_matches_the_kubelet_and_the_images(lay: Layout) -> None:
    node = lay.node(1)
    plugin = cri(node)
    assert plugin["sandbox_image"] == configs.PAUSE_IMAGE == images.PAUSE.reference
    runc = plugin["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is False  # the kubelet uses cgroupfs too
    assert configs.kubelet_config(lay, node)["cgroupDriver"] == "cgroupfs"
    assert plugin["restrict_oom_score_adj"] is True
    assert plugin["stream_server_address"] == "127.0.0.1"


def test_containerds_share_no_path(lay: Layout) -> None:
    one, two = (containerd(n) for n in lay.nodes)
    assert one["grpc"]["address"] != two["grpc"]["address"]
    assert one["root"] != two["root"] and one["state"] != two["state"]


def test_write_all_writes_configs_that_parse(lay: Layout) -> None:
    configs.write_all(lay)
    admin = yaml.safe_load(lay.kubeconfig.read_text())
    assert admin["clusters"][0]["cluster"]["server"] == lay.api_url
    assert admin["users"][0]["user"]["client-certificate"] == str(lay.pki / "admin.crt")
    proxy = yaml.safe_load((lay.config / "kube-proxy.yaml").read_text())
    assert proxy["mode"] == "iptables" and proxy["clusterCIDR"] == network.POD_CIDR
    for node in lay.nodes:
        kubelet = yaml.safe_load((node.state / "kubelet.yaml").read_text())
        assert kubelet == configs.kubelet_config(lay, node)
        user = yaml.safe_load((node.state / "kubelet.kubeconfig").read_text())["users"][0]
        assert user["user"]["client-certificate"] == str(lay.pki / f"{node.name}-client.crt")
        tomllib.loads((node.state / "containerd.toml").read_text())
        cni = json.loads((node.state / "cni" / "10-chaosdrill.conflist").read_text())
        assert cni == network.cni_config(node.index, node.state)


def test_control_plane_uses_the_fixed_ports_and_ranges(lay: Layout) -> None:
    apiserver = configs.apiserver_command(lay)
    assert f"--secure-port={L.API_PORT}" in apiserver
    assert f"--etcd-servers=https://127.0.0.1:{L.ETCD_PORT}" in apiserver
    assert f"--service-cluster-ip-range={network.SERVICE_CIDR}" in apiserver
    assert "--authorization-mode=Node,RBAC" in apiserver
    controller = configs.controller_manager_command(lay)
    assert f"--secure-port={L.CONTROLLER_MANAGER_PORT}" in controller
    assert f"--service-cluster-ip-range={network.SERVICE_CIDR}" in controller
    assert f"--secure-port={L.SCHEDULER_PORT}" in configs.scheduler_command(lay)
    etcd = configs.etcd_command(lay)
    assert etcd[etcd.index("--listen-client-urls") + 1] == f"https://127.0.0.1:{L.ETCD_PORT}"


def test_controllers_start_unthrottled(lay: Layout) -> None:
    """Each controller's client takes a token as it starts; the default 20 qps made `cluster
    up` wait ~4 s more for the ReplicaSet controller."""
    controller = configs.controller_manager_command(lay)
    assert int(flag(controller, "kube-api-qps")) >= 100
    assert int(flag(controller, "kube-api-burst")) >= int(flag(controller, "kube-api-qps"))


def flag(command: list[str], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} given {len(values)} times"
    return values[0]


def test_every_component_listens_where_the_layout_says(lay: Layout) -> None:
    """Each fixed port's address in Layout.ports is the one its component is told to bind."""
    ports = lay.ports
    assert {address for address, _ in ports.values()} == {L.LOOPBACK, L.NODE_IP}
    apiserver = configs.apiserver_command(lay)
    assert flag(apiserver, "bind-address") == ports[L.API_PORT][0] == L.NODE_IP
    assert flag(apiserver, "anonymous-auth") == "false"
    assert f"https://{flag(apiserver, 'advertise-address')}:{L.API_PORT}" == lay.api_url
    for command, port in ((configs.controller_manager_command(lay), L.CONTROLLER_MANAGER_PORT),
                          (configs.scheduler_command(lay), L.SCHEDULER_PORT)):
        assert flag(command, "bind-address") == ports[port][0]
    etcd = configs.etcd_command(lay)
    for option, port in (("--listen-client-urls", L.ETCD_PORT),
                         ("--listen-peer-urls", L.ETCD_PEER_PORT)):
        assert etcd[etcd.index(option) + 1] == f"https://{ports[port][0]}:{port}"
    proxy = configs.kube_proxy_config(lay)
    for field, port in (("healthzBindAddress", L.PROXY_HEALTHZ_PORT),
                        ("metricsBindAddress", L.PROXY_METRICS_PORT)):
        assert proxy[field] == f"{ports[port][0]}:{port}"
    for node in lay.nodes:
        kubelet = configs.kubelet_config(lay, node)
        assert kubelet["address"] == ports[node.kubelet_port][0]
        assert kubelet["healthzBindAddress"] == ports[node.healthz_port][0]
        assert kubelet["readOnlyPort"] == 0
        assert cri(node)["stream_server_address"] == L.LOOPBACK


def test_every_nodes_containerd_reads_the_registry_hosts_folder(lay: Layout) -> None:
    """Registries and their CAs come from one certs.d chaos-drill owns, not an insecure flag."""
    for node in lay.nodes:
        registry = tomllib.loads(configs.containerd_config(node, lay.registry_hosts))[
            "plugins"]["io.containerd.grpc.v1.cri"]["registry"]
        assert registry == {"config_path": str(lay.state / "certs.d")}


def test_kubelets_run_without_dra_whose_start_up_races_the_container_manager(
        lay: Layout) -> None:
    """Kubernetes v1.34.4's kubelet with DRA on can die at start with "concurrent map iteration
    and map write" (DRA's wipe reads the capacity the container manager is writing)."""
    for node in lay.nodes:
        assert configs.kubelet_config(lay, node)["featureGates"] == {
            "DynamicResourceAllocation": False}
