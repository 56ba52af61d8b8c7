"""The kind provider's pure parts: its command lines, the cluster config it writes, the CNI and
routes it gives each node, the egress rule, CoreDNS without upstream, and Docker's rules it
removes. The provider itself runs against real kind in tests/kind (`make test-kind`)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import importlib.util
import json
import tarfile
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from chaos.cluster import dockerd, kind, kind_cni, kind_config, kind_host, kind_images, providers
from chaos.cluster.kind import KindCluster
from chaos.cluster.layout import API_PORT
from chaos.errors import SetupError
from chaos.images import sample
from chaos.images.archive import image_of

from support import REPO

WRAPPER = REPO / "cluster" / "kind" / "runc-wrapper"


def test_create_uses_the_given_config_and_image_and_does_not_wait() -> None:
    command = kind.create_command("drill", Path("/state/cluster.yaml"), "img:1")
    assert command == ["kind", "create", "cluster", "--name", "drill", "--config",
                       "/state/cluster.yaml", "--image", "img:1"]
    assert "--wait" not in command, "nodes are not Ready before the CNI goes in"
    assert kind_config.CONFIG.is_file()


def test_cluster_config_has_a_control_plane_and_two_workers() -> None:
    config = yaml.safe_load(kind_config.CONFIG.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]


def test_written_config_keeps_clear_of_the_local_clusters_subnets() -> None:
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    config = kind_config.cluster_config(base, local_image=False)
    networking = config["networking"]
    assert networking["disableDefaultCNI"] is True
    for subnet in (networking["podSubnet"], networking["serviceSubnet"]):
        assert not subnet.startswith(("10.244.", "10.96.")), subnet
    patch = yaml.safe_load(config["kubeadmConfigPatches"][0])
    assert "etcd" not in patch, "kind's own image brings registry.k8s.io's etcd"
    assert patch["controllerManager"]["extraArgs"]["node-monitor-grace-period"] == "16s"
    assert len([n for n in config["nodes"] if n["role"] == "control-plane"]) == 1
    for component in ("controllerManager", "scheduler"):  # no lease to wait for with one
        assert patch[component]["extraArgs"]["leader-elect"] == "false"
    assert patch["controllerManager"]["extraArgs"]["kube-api-qps"] == "100"


def test_with_the_local_image_kubeadm_runs_the_preloaded_etcd() -> None:
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    config = kind_config.cluster_config(base, local_image=True)
    patch = yaml.safe_load(config["kubeadmConfigPatches"][0])
    assert patch["kind"] == "ClusterConfiguration"
    assert patch["etcd"]["local"] == {"imageRepository": "chaosdrill.local",
                                      "imageTag": "v3.6.16"}


def test_each_node_hands_out_pod_ips_from_its_own_range() -> None:
    config = kind_cni.cni_config("10.250.1.0/24")
    ptp = config["plugins"][0]
    assert ptp["type"] == "ptp" and ptp["ipMasq"] is False
    assert ptp["ipam"]["ranges"] == [[{"subnet": "10.250.1.0/24"}]]


def test_routes_lead_to_every_other_nodes_pods() -> None:
    nodes = {"cp": ("172.18.0.2", "10.250.0.0/24"), "w1": ("172.18.0.3", "10.250.1.0/24"),
             "w2": ("172.18.0.4", "10.250.2.0/24")}
    assert kind_cni.route_commands("w1", nodes) == [
        ["ip", "route", "replace", "10.250.0.0/24", "via", "172.18.0.2"],
        ["ip", "route", "replace", "10.250.2.0/24", "via", "172.18.0.4"]]


def test_egress_rule_rejects_what_leaves_by_the_default_route() -> None:
    rule = kind_host.egress_rule("cdrill-kind", "eth0")
    assert rule[:4] == ["-i", "cdrill-kind", "-o", "eth0"] and rule[-2:] == ["-j", "REJECT"]


COREFILE = """.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
    }
    loop
}
"""


def test_corefile_loses_its_upstream_and_nothing_else() -> None:
    kept = kind_host.corefile_without_upstream(COREFILE)
    assert "forward" not in kept and "max_concurrent" not in kept
    assert kept.count("{") == kept.count("}") == 3
    for line in ("errors", "prometheus :9153", "loop", "pods insecure", "cache 30 {"):
        assert line in kept


def test_docker_rules_found_in_every_chain_jumping_to_docker() -> None:
    listing = ["-P FORWARD DROP", "-N DOCKER", "-N DOCKER-USER", "-N OTHER",
               "-A FORWARD -j DOCKER-USER", "-A FORWARD -o br-1 -j DOCKER",
               "-A FORWARD -j OTHER", "-A DOCKER-USER -j RETURN"]
    rules, chains = dockerd.docker_rules(listing)
    assert chains == ["DOCKER", "DOCKER-USER"]
    assert rules == [["FORWARD", "-j", "DOCKER-USER"], ["FORWARD", "-o", "br-1", "-j", "DOCKER"]]


def test_kill_goes_through_the_node_containers_containerd() -> None:
    assert kind.kill_command("drill-worker", "abc123") == [
        "docker", "exec", "drill-worker", "ctr", "--namespace", "k8s.io", "tasks", "kill",
        "--signal", "SIGKILL", "abc123"]


def test_load_sends_the_archive_to_the_named_cluster() -> None:
    assert kind.load_command("drill", Path("/cache/web-1.tar")) == [
        "kind", "load", "image-archive", "/cache/web-1.tar", "--name", "drill"]


def test_an_archive_names_its_image_as_the_runtime_reports_it(tmp_path: Path) -> None:
    """crictl reports an image's ID as its config's digest; a node holding that reference with
    that ID needs no load, one holding an older build of it does."""
    (archive,) = [a for a in sample.build_archives(tmp_path) if a.name == "web-1.tar"]
    reference, image_id = image_of(archive)
    with tarfile.open(archive) as tar:
        (config,) = [m for m in tar.getnames() if m.endswith(".json") and m != "manifest.json"]
        digest = hashlib.sha256(tar.extractfile(config).read()).hexdigest()  # type: ignore[union-attr]
    assert (reference, image_id) == ("chaosdrill.local/web:1", f"sha256:{digest}")
    holdings = {"n1": {(reference, image_id)}, "n2": {(reference, "sha256:older")}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kind_images, "held", holdings.__getitem__)
        assert kind_images.missing(["n1"], [archive]) == []
        assert kind_images.missing(["n1", "n2"], [archive]) == [archive]


def test_without_the_kind_cli_the_error_names_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no kind, no docker
    monkeypatch.setenv("CHAOS_DRILL_CACHE", str(tmp_path))
    with pytest.raises(SetupError, match=r"^kind not found: run 'make kind'"):
        KindCluster("drill")._kind("get", "clusters")


def test_without_the_node_image_the_error_names_make_kind(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("CHAOS_DRILL_CACHE", str(tmp_path))
    with pytest.raises(SetupError, match=r"^node image chaosdrill.local/kind-node:v1.34.4 is not "
                                         r"built .*: run 'make kind', or pass --kind-image IMAGE$"):
        KindCluster("drill")._node_image(lambda _: None)


def wrapper() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("runc_wrapper", str(WRAPPER))
    spec = importlib.util.spec_from_loader("runc_wrapper", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_runc_wrapper_finds_the_subcommand_after_global_flags() -> None:
    runc = wrapper()
    args = ["--root", "/run/x", "--log", "/l", "--log-format", "json", "--systemd-cgroup",
            "create", "--bundle", "/b", "id"]
    assert runc.subcommand(args) == 7
    assert runc.option(args[8:], ("--bundle", "-b")) == "/b"
    assert runc.option(["--process=/p.json"], ("--process", "-p")) == "/p.json"


def test_runc_wrapper_drops_only_what_the_host_cannot_grant(tmp_path: Path) -> None:
    runc = wrapper()
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    spec: dict[str, Any] = {"process": {"capabilities": {k: list(caps) for k in (
        "bounding", "effective", "permitted")}}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(spec))
    runc.edit(path, True, {"CAP_SYS_RESOURCE"})
    edited = json.loads(path.read_text())["process"]["capabilities"]
    assert all(v == ["CAP_CHOWN", "CAP_SYS_ADMIN"] for v in edited.values())


def test_the_command_line_chooses_the_kind_image_and_name() -> None:
    parser = argparse.ArgumentParser()
    providers.add_arguments(parser)
    provider = providers.from_args(parser.parse_args(
        ["--provider", "kind", "--name", "demo", "--kind-image", "kindest/node:v1.34.0"]))
    assert isinstance(provider, KindCluster)
    assert (provider.cluster_name, provider.image) == ("demo", "kindest/node:v1.34.0")
    default = providers.from_args(parser.parse_args(["--provider", "kind"]))
    assert isinstance(default, KindCluster) and default.image is None


def test_the_config_written_for_pytest_kind_is_the_providers(tmp_path: Path) -> None:
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    ours = yaml.safe_load(kind_config.write_cluster_config(tmp_path / "a.yaml").read_text())
    assert ours == kind_config.cluster_config(base, local_image=True)
    other = yaml.safe_load(kind_config.write_cluster_config(tmp_path / "b.yaml", "kindest/node:x")
                           .read_text())
    assert other == kind_config.cluster_config(base, local_image=False)
    assert other["networking"]["disableDefaultCNI"] is True


def test_the_api_server_is_published_on_a_fixed_loopback_port() -> None:
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    config = kind_config.cluster_config(base, local_image=True)
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    assert config["networking"]["apiServerPort"] == API_PORT


def test_only_chaos_drills_own_clusters_ask_the_ca_for_kubelet_serving_certs(
        tmp_path: Path) -> None:
    """pytest-kind's clusters keep self-signed kubelet certs: nothing approves their CSRs."""
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    ours = kind_config.cluster_config(base, local_image=True, serving_certs=True)
    patches = [yaml.safe_load(p) for p in ours["kubeadmConfigPatches"]]
    assert {"kind": "KubeletConfiguration", "serverTLSBootstrap": True} in patches
    written = yaml.safe_load(kind_config.write_cluster_config(tmp_path / "c.yaml").read_text())
    assert not any("serverTLSBootstrap" in p for p in written["kubeadmConfigPatches"])


def test_every_node_reads_registry_hosts_from_a_mounted_certs_d(tmp_path: Path) -> None:
    """Registries' CAs reach the nodes' containerd through config_path and a mounted folder."""
    base = yaml.safe_load(kind_config.CONFIG.read_text())
    assert "containerdConfigPatches" not in kind_config.cluster_config(base, local_image=True)
    config = kind_config.cluster_config(base, local_image=True, registry_hosts=tmp_path)
    (patch,) = config["containerdConfigPatches"]
    registry = tomllib.loads(patch)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert registry == {"config_path": "/etc/containerd/certs.d"}
    for node in config["nodes"]:
        assert node["extraMounts"] == [{"hostPath": str(tmp_path), "readOnly": True,
                                        "containerPath": "/etc/containerd/certs.d"}]
    assert base["nodes"][0].get("extraMounts") is None  # the shipped config is left alone


def test_services_route_through_the_control_plane_nodes_ipv4(
        monkeypatch: pytest.MonkeyPatch) -> None:
    routed: list[str] = []
    monkeypatch.setattr(kind_host, "service_gateway", lambda: None)
    monkeypatch.setattr(kind_host, "route_services", routed.append)
    said: list[str] = []
    nodes = {"c-worker": frozenset({"172.30.0.3"}),
             "c-control-plane": frozenset({"fc00::2", "172.30.0.2"})}
    kind_host.route_through_plane(nodes, said.append)
    assert routed == ["172.30.0.2"]
    assert said == ["Services (10.251.0.0/16) routed through c-control-plane (172.30.0.2): "
                    "drills probe from this host"]


def test_another_clusters_service_route_is_left_and_refuses_the_host_probe(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two chaos-drill kind clusters share the Service range: the route stays with the first,
    and the second's drills must not probe through it (they would reach the first's Services)."""
    routed: list[str] = []
    monkeypatch.setattr(kind_host, "service_gateway", lambda: "172.30.0.9")
    monkeypatch.setattr(kind_host, "route_services", routed.append)
    said: list[str] = []
    nodes = {"b-control-plane": frozenset({"172.30.0.2"})}
    kind_host.route_through_plane(nodes, said.append)
    assert routed == [] and "stay routed to 172.30.0.9" in said[0]
    assert kind_host.probe_refusal("10.251.3.4", lambda: nodes, "b") == (
        "this host's route to 10.251.0.0/16 goes to 172.30.0.9, a node of another kind cluster, "
        "not of b")
    assert kind_host.probe_refusal("10.96.0.1", lambda: nodes, "b") is None, "not kind's range"
    own = {"a-control-plane": frozenset({"172.30.0.9"})}
    assert kind_host.probe_refusal("10.251.3.4", lambda: own, "a") is None
    kind_host.route_through_plane(own, said.append)
    assert routed == ["172.30.0.9"], "its own route is put back as it was"
