"""Kubelet serving certificates signed by the cluster CA, for clusters whose kubelets run with
`serverTLSBootstrap` (chaos-drill's kind clusters): each kubelet asks for its certificate by a
CertificateSigningRequest (signer kubernetes.io/kubelet-serving) that nothing in the cluster
approves; chaos-drill approves those of its own nodes, once each is checked to ask for nothing
but that node's own name and addresses."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes import client

SIGNER = "kubernetes.io/kubelet-serving"
USAGES = frozenset({"digital signature", "key encipherment", "server auth"})
NODE_PREFIX = "system:node:"


def refusal(csr: Any, nodes: Mapping[str, frozenset[str]]) -> str | None:
    """Why CSR (a V1CertificateSigningRequest) is not one to approve; None when it is a kubelet
    serving request from a node in NODES (name -> its IP addresses, as its runtime gives them)
    for that node's name and addresses only, for serving only."""
    spec = csr.spec
    if spec.signer_name != SIGNER:
        return f"signer {spec.signer_name}, not {SIGNER}"
    node = (spec.username or "").removeprefix(NODE_PREFIX)
    if not (spec.username or "").startswith(NODE_PREFIX) or node not in nodes:
        return f"asked by {spec.username}, not by a node of this cluster"
    if "system:nodes" not in (spec.groups or []):
        return f"{spec.username} is not in group system:nodes"
    if not set(spec.usages or []) <= USAGES or "server auth" not in (spec.usages or []):
        return f"usages {sorted(spec.usages or [])}, not serving ones"
    request = x509.load_pem_x509_csr(base64.b64decode(spec.request))
    subject = {(a.oid, a.value) for a in request.subject}
    if subject != {(NameOID.COMMON_NAME, spec.username), (NameOID.ORGANIZATION_NAME,
                                                          "system:nodes")}:
        return f"subject {request.subject.rfc4514_string()} is not {spec.username}'s"
    try:
        names = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "no subject alternative names"
    dns = set(names.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    if not dns <= {node} or not ips <= nodes[node] or not ips:
        return (f"names {sorted(dns | ips)} are not only node {node}'s "
                f"({sorted({node} | nodes[node])})")
    if len(names) != len(dns) + len(ips):
        return "subject alternative names other than DNS names and IP addresses"
    return None


def _issued(csr: Any) -> bool:
    return bool(csr.status and csr.status.certificate)


def _decided(csr: Any) -> bool:
    return any(c.type in ("Approved", "Denied", "Failed")
               for c in (csr.status and csr.status.conditions) or [])


def approve(api: Any, nodes: Mapping[str, frozenset[str]]) -> list[str]:
    """Approves every pending kubelet serving CSR that `refusal` accepts; returns the nodes of
    NODES that have no serving certificate issued yet ([] when all have)."""
    certificates = client.CertificatesV1Api(api)
    requests = certificates.list_certificate_signing_request(_request_timeout=30).items
    served = {csr.spec.username.removeprefix(NODE_PREFIX) for csr in requests
              if csr.spec.signer_name == SIGNER and _issued(csr)}
    for csr in requests:
        if _decided(csr) or refusal(csr, nodes) is not None:
            continue
        node = csr.spec.username.removeprefix(NODE_PREFIX)
        csr.status = csr.status or client.V1CertificateSigningRequestStatus()
        csr.status.conditions = [*(csr.status.conditions or []),
                                 client.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="ChaosDrillApproved",
            message=f"chaos-drill: a serving certificate for its node {node}")]
        certificates.replace_certificate_signing_request_approval(
            csr.metadata.name, csr, _request_timeout=30)
    return sorted(set(nodes) - served)


def address_set(addresses: list[str]) -> frozenset[str]:
    """ADDRESSES in the form x509 gives them back (compressed IPv6, no zone)."""
    return frozenset(str(ipaddress.ip_address(a)) for a in addresses if a)
