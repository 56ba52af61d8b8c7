"""The local cluster's add-ons as configured: kube-dns at the address every kubelet hands out,
no upstream in the Corefile, the aggregation layer's certs and flags agreeing with each other,
and metrics-server trusting the kubelets through the cluster CA."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaos.cluster import addons, configs, network, tuning, workloads
from chaos.cluster.layout import Layout


@pytest.fixture(scope="module")
def lay(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    root = tmp_path_factory.mktemp("cluster")
    lay = Layout(root / "state", root / "run")
    configs.write_pki(lay)
    return lay


def flag(command: list[str], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} given {len(values)} times"
    return values[0]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def container(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return found


def test_kube_dns_is_where_every_kubelet_points_its_pods(lay: Layout) -> None:
    docs = addons.documents(lay.pki)
    service = find(docs, "Service", "kube-dns")
    assert service["spec"]["clusterIP"] == network.DNS_SERVICE_IP
    assert network.DNS_SERVICE_IP.startswith("10.96.")
    for node in lay.nodes:
        kubelet = configs.kubelet_config(lay, node)
        assert kubelet["clusterDNS"] == [network.DNS_SERVICE_IP]
        assert kubelet["clusterDomain"] == network.CLUSTER_DOMAIN


def test_corefile_serves_the_cluster_domain_and_forwards_nowhere() -> None:
    corefile = addons.corefile()
    assert f"kubernetes {network.CLUSTER_DOMAIN} " in corefile
    assert "forward" not in corefile and "proxy" not in corefile


def test_dns_service_targets_the_port_coredns_listens_on(lay: Layout) -> None:
    docs = addons.documents(lay.pki)
    port = addons.corefile().split("{", 1)[0].strip().rsplit(":", 1)[1]
    ports = find(docs, "Service", "kube-dns")["spec"]["ports"]
    assert {(p["port"], p["protocol"]) for p in ports if p["name"].startswith("dns")} == {
        (53, "UDP"), (53, "TCP")}
    assert {str(p["targetPort"]) for p in ports if p["name"].startswith("dns")} == {port}


def test_apiservice_trusts_the_cluster_ca_and_the_secret_holds_a_cert_for_the_service(
        lay: Layout) -> None:
    docs = addons.documents(lay.pki)
    apiservice = find(docs, "APIService", addons.METRICS_API)
    assert base64.b64decode(apiservice["spec"]["caBundle"]) == (lay.pki / "ca.crt").read_bytes()
    secret = find(docs, "Secret", "metrics-server-tls")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    service = apiservice["spec"]["service"]
    assert f"{service['name']}.{service['namespace']}.svc" in names.get_values_for_type(
        x509.DNSName)
    ca = x509.load_pem_x509_certificate((lay.pki / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)


def test_front_proxy_client_is_allowed_and_signed_by_its_own_ca(lay: Layout) -> None:
    apiserver = configs.apiserver_command(lay)
    client_cert = Path(flag(apiserver, "proxy-client-cert-file"))
    ca_path = Path(flag(apiserver, "requestheader-client-ca-file"))
    assert ca_path != lay.pki / "ca.crt", "the front proxy needs a CA of its own"
    cert = x509.load_pem_x509_certificate(client_cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_path.read_bytes()))
    name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert name == flag(apiserver, "requestheader-allowed-names")
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert Path(flag(apiserver, "proxy-client-key-file")).exists()
    assert flag(apiserver, "enable-aggregator-routing") == "true"


def test_metrics_server_verifies_kubelets_with_the_cluster_ca(lay: Layout) -> None:
    docs = addons.documents(lay.pki)
    deployment = find(docs, "Deployment", "metrics-server")
    args = container(deployment)["args"]
    assert "--kubelet-insecure-tls" not in args
    assert flag(args, "kubelet-certificate-authority") == "/ca/ca.crt"
    assert "--kubelet-use-node-status-port" in args
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["ca"]["configMap"]["name"] == "kube-root-ca.crt"


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def test_metric_resolution_is_the_lowest_allowed_and_exceeds_the_kubelet_timeout(
        lay: Layout) -> None:
    args = container(find(addons.documents(lay.pki), "Deployment", "metrics-server"))["args"]
    resolution = seconds(flag(args, "metric-resolution"))
    assert resolution == tuning.CHOSEN.metric_resolution_seconds == 10
    assert seconds(flag(args, "kubelet-request-timeout")) < resolution * 0.9
    sync = seconds(flag(configs.controller_manager_command(lay),
                        "horizontal-pod-autoscaler-sync-period"))
    assert sync < 15, "faster than the default, so a load drill fits in a minute or two"


def test_addon_images_are_the_ones_the_manifests_name() -> None:
    referenced = {container(d)["image"] for d in workloads.documents(addons.MANIFESTS)
                  if d["kind"] == "Deployment"}
    assert referenced == {image.reference for image in addons.addon_images()}


def member(tar: tarfile.TarFile, name: str) -> bytes:
    data = tar.extractfile(name)
    assert data is not None, name
    return data.read()


def test_build_archives_writes_once_and_again_when_the_binary_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "coredns"
    binary.write_bytes(b"\x7fELF one")
    image = addons.BinaryImage("coredns", "chaosdrill.local/coredns:v1", binary)
    monkeypatch.setattr(addons, "addon_images", lambda: [image])
    (path,) = addons.build_archives(tmp_path / "images")
    written = path.stat().st_mtime_ns
    assert addons.build_archives(tmp_path / "images") == [path]
    assert path.stat().st_mtime_ns == written
    with tarfile.open(path) as tar:
        manifest = json.loads(member(tar, "manifest.json"))
        config = json.loads(member(tar, manifest[0]["Config"]))
        assert manifest[0]["RepoTags"] == ["chaosdrill.local/coredns:v1"]
        assert config["config"]["Entrypoint"] == ["/coredns"]
        with tarfile.open(fileobj=io.BytesIO(member(tar, manifest[0]["Layers"][0]))) as layer:
            assert member(layer, "coredns") == b"\x7fELF one"
    binary.write_bytes(b"\x7fELF two")
    os.utime(binary, ns=(written + 10**9, written + 10**9))
    addons.build_archives(tmp_path / "images")
    assert path.stat().st_mtime_ns != written


def test_the_components_get_the_tuning_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, lay: Layout) -> None:
    monkeypatch.setenv(tuning.HPA_SYNC_ENV, "15s")
    monkeypatch.setenv(tuning.RESOLUTION_ENV, "15s")
    sync = flag(configs.controller_manager_command(lay), "horizontal-pod-autoscaler-sync-period")
    assert sync == "15s"
    args = container(find(addons.documents(lay.pki), "Deployment", "metrics-server"))["args"]
    assert flag(args, "metric-resolution") == "15s"
    assert seconds(flag(args, "kubelet-request-timeout")) == tuning.KUBELET_REQUEST_TIMEOUT
    assert sum(a.startswith("--metric-resolution=") for a in args) == 1


def test_on_kind_metrics_server_alone_is_applied_trusted_through_a_ca_of_its_own(
        tmp_path: Path) -> None:
    pki_dir = addons.write_metrics_server_pki(tmp_path / "pki")
    docs = addons.documents(pki_dir, only_metrics_server=True)
    assert not [d for d in docs if "coredns" in d["metadata"]["name"]
                or d["metadata"]["name"] == "kube-dns"], "kind brings its own CoreDNS"
    service = find(docs, "APIService", addons.METRICS_API)
    ca = x509.load_pem_x509_certificate(base64.b64decode(service["spec"]["caBundle"]))
    secret = find(docs, "Secret", "metrics-server-tls")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "metrics-server.kube-system.svc" in names.get_values_for_type(x509.DNSName)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"] == [
        "metrics-server"]
