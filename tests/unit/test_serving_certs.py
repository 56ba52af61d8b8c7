"""Which kubelet serving CSRs chaos-drill approves on its kind clusters: only those from a node
of the cluster, for that node's own name and addresses, for serving."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from chaos.cluster import serving_certs

NODES = {"chaos-drill-worker": frozenset({"172.30.0.3"}),
         "chaos-drill-worker2": frozenset({"172.30.0.4"})}


def csr(node: str = "chaos-drill-worker", *, common_name: str | None = None,
        dns: tuple[str, ...] = ("chaos-drill-worker",), ips: tuple[str, ...] = ("172.30.0.3",),
        username: str | None = None, signer: str = serving_certs.SIGNER,
        usages: tuple[str, ...] = ("digital signature", "server auth")) -> Any:
    """A CertificateSigningRequest as a kubelet with serverTLSBootstrap sends it."""
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         common_name or f"system:node:{node}")])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    request = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    pem = request.public_bytes(serialization.Encoding.PEM)
    return client.V1CertificateSigningRequest(
        metadata=client.V1ObjectMeta(name="csr-1"),
        spec=client.V1CertificateSigningRequestSpec(
            request=base64.b64encode(pem).decode(), signer_name=signer,
            username=username or f"system:node:{node}",
            groups=["system:nodes", "system:authenticated"], usages=list(usages)))


def test_a_nodes_request_for_its_own_name_and_address_is_approved() -> None:
    assert serving_certs.refusal(csr(), NODES) is None
    assert serving_certs.refusal(csr(usages=("key encipherment", "digital signature",
                                              "server auth")), NODES) is None


def test_other_signers_and_askers_are_refused() -> None:
    assert "signer kubernetes.io/kube-apiserver-client" in str(serving_certs.refusal(
        csr(signer="kubernetes.io/kube-apiserver-client"), NODES))
    assert "not by a node of this cluster" in str(serving_certs.refusal(
        csr("other-node", dns=("other-node",)), NODES))
    assert "not by a node of this cluster" in str(serving_certs.refusal(
        csr(username="system:serviceaccount:demo:default"), NODES))


def test_a_request_for_more_than_the_nodes_own_names_is_refused() -> None:
    another_nodes_ip = csr(ips=("172.30.0.3", "172.30.0.4"))
    assert "not only node chaos-drill-worker's" in str(serving_certs.refusal(another_nodes_ip,
                                                                             NODES))
    extra_name = csr(dns=("chaos-drill-worker", "kubernetes.default.svc"))
    assert "kubernetes.default.svc" in str(serving_certs.refusal(extra_name, NODES))
    assert serving_certs.refusal(csr(ips=()), NODES) is not None, "no address at all"


def test_a_subject_not_the_askers_or_client_usages_are_refused() -> None:
    assert "subject" in str(serving_certs.refusal(
        csr(common_name="system:node:chaos-drill-worker2"), NODES))
    assert "usages" in str(serving_certs.refusal(
        csr(usages=("digital signature", "client auth")), NODES))


def test_addresses_are_compared_in_one_form() -> None:
    assert serving_certs.address_set(["172.30.0.3", "", "fd00:0::3"]) == frozenset(
        {"172.30.0.3", "fd00::3"})
