"""The local cluster's certificates: all signed by one CA, with the names, groups and key usages
each component needs, and private keys readable by root only."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from chaos.cluster import configs, network, pki
from chaos.cluster import layout as L
from chaos.cluster.layout import Layout

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH
CLIENT_CERTS = ("apiserver-kubelet-client", "admin", "controller-manager", "scheduler", "proxy",
                "node-1-client", "node-2-client")
SERVING_CERTS = ("apiserver", "node-1-serving", "node-2-serving")


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cluster")
    lay = Layout(root / "state", root / "run")
    configs.write_pki(lay)
    return lay.pki


def load(directory: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / f"{name}.crt").read_bytes())


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def organizations(cert: x509.Certificate) -> set[str]:
    return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return dns, ips


def test_ca_is_a_self_signed_ca(pki_dir: Path) -> None:
    ca = load(pki_dir, "ca")
    assert ca.subject == ca.issuer
    ca.verify_directly_issued_by(ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    key_usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.key_cert_sign and key_usage.crl_sign


@pytest.mark.parametrize("name", CLIENT_CERTS + SERVING_CERTS)
def test_every_cert_chains_to_the_ca_and_is_not_a_ca(pki_dir: Path, name: str) -> None:
    ca, cert = load(pki_dir, "ca"), load(pki_dir, name)
    cert.verify_directly_issued_by(ca)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_before_utc < cert.not_valid_after_utc


@pytest.mark.parametrize("name", CLIENT_CERTS + SERVING_CERTS + ("ca", "sa"))
def test_each_key_is_private_and_matches_its_cert(pki_dir: Path, name: str) -> None:
    key_path = pki_dir / f"{name}.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    public = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if name == "sa":
        assert key.public_key().public_bytes(*public) == (pki_dir / "sa.pub").read_bytes()
    else:
        assert key.public_key().public_bytes(*public) == (
            load(pki_dir, name).public_key().public_bytes(*public))


@pytest.mark.parametrize("name", CLIENT_CERTS)
def test_client_certs_are_for_clients_only(pki_dir: Path, name: str) -> None:
    cert = load(pki_dir, name)
    assert usages(cert) == {CLIENT}
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)


@pytest.mark.parametrize("name", SERVING_CERTS)
def test_serving_certs_are_for_servers_only(pki_dir: Path, name: str) -> None:
    assert usages(load(pki_dir, name)) == {SERVER}


def test_apiserver_serves_every_name_it_is_reached_by(pki_dir: Path) -> None:
    dns, ips = sans(load(pki_dir, "apiserver"))
    assert {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"} <= dns
    assert {"127.0.0.1", L.NODE_IP, network.API_SERVICE_IP} <= ips
    assert ipaddress.ip_address(network.API_SERVICE_IP) in ipaddress.ip_network(
        network.SERVICE_CIDR)


@pytest.mark.parametrize("node", ["node-1", "node-2"])
def test_kubelet_serving_cert_names_its_node(pki_dir: Path, node: str) -> None:
    assert sans(load(pki_dir, f"{node}-serving")) == ({node}, {L.NODE_IP})


@pytest.mark.parametrize(
    ("name", "user", "groups"),
    [
        ("admin", "chaos-drill-admin", {"system:masters"}),
        ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", {"system:masters"}),
        ("controller-manager", "system:kube-controller-manager", set()),
        ("scheduler", "system:kube-scheduler", set()),
        ("proxy", "system:kube-proxy", set()),
        ("node-1-client", "system:node:node-1", {"system:nodes"}),
        ("node-2-client", "system:node:node-2", {"system:nodes"}),
    ],
)
def test_client_identity_matches_kubernetes_rbac(pki_dir: Path, name: str, user: str,
                                                 groups: set[str]) -> None:
    """The API server takes the user from CN and groups from O; RBAC and the Node authorizer
    only recognise these exact spellings."""
    cert = load(pki_dir, name)
    assert common_name(cert) == user
    assert organizations(cert) == groups


def test_issue_writes_the_requested_names(tmp_path: Path) -> None:
    pki.make_ca(tmp_path)
    pki.issue(tmp_path, pki.CertRequest("both", "both-ways", ("team-a", "team-b"),
                                        ("example.test",), ("10.0.0.7",), server=True))
    cert = load(tmp_path, "both")
    assert usages(cert) == {SERVER, CLIENT}
    assert organizations(cert) == {"team-a", "team-b"}
    assert sans(cert) == ({"example.test"}, {"10.0.0.7"})


def test_write_pki_keeps_an_existing_ca(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "state", tmp_path / "run")
    configs.write_pki(lay)
    first = (lay.pki / "ca.crt").read_bytes()
    configs.write_pki(lay)
    assert (lay.pki / "ca.crt").read_bytes() == first
