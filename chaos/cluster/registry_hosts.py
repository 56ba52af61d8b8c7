"""Which registries a cluster's containerd trusts, and with which CA: one `HOST:PORT/hosts.toml`
(with `ca = ...`) per registry in a certs.d folder the runtime's `config_path` names. containerd
reads that folder at every pull, so a registry added while the cluster runs is used at once."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from cryptography import x509

from chaos.cluster.layout import Layout
from chaos.errors import ClusterError, UsageError

HOST_PATTERN = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
CA_NAME = "ca.crt"


def parse(text: str) -> tuple[str, Path]:
    """`HOST[:PORT]=CA.pem` (the --registry-ca value) as the host and a readable PEM CA."""
    host, equals, ca = text.partition("=")
    if not equals or not HOST_PATTERN.match(host) or not ca:
        raise UsageError(f"--registry-ca {text!r} is not HOST[:PORT]=CA.pem: e.g. "
                         "--registry-ca 10.0.0.1:5000=ca.pem")
    path = Path(ca)
    try:
        x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as error:
        raise UsageError(f"--registry-ca {text}: {ca} is not a readable PEM certificate "
                         f"({str(error).splitlines()[0]}): give the registry CA's PEM file") \
            from None
    return host, path


def hosts_toml(host: str, ca: Path) -> str:
    """containerd's hosts.toml for HOST: pull and resolve over HTTPS, trusting CA (no insecure
    flag: a certificate CA did not sign is refused)."""
    return (f'server = "https://{host}"\n\n'
            f'[host."https://{host}"]\n'
            f'  capabilities = ["pull", "resolve"]\n'
            f'  ca = "{ca}"\n')


def trust(certs_d: Path, host: str, ca: Path, inside: Path | None = None) -> Path:
    """Copies CA into CERTS_D/HOST/ and writes hosts.toml there; INSIDE is where CERTS_D is seen
    by the runtime (a kind node mounts it elsewhere), CERTS_D itself by default."""
    folder = certs_d / host
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, folder / CA_NAME)
    seen = (inside or certs_d) / host / CA_NAME
    (folder / "hosts.toml").write_text(hosts_toml(host, seen))
    return folder


def forget(certs_d: Path, host: str) -> None:
    """Removes HOST's folder from CERTS_D: its registry is trusted no more."""
    shutil.rmtree(certs_d / host, ignore_errors=True)


def trust_local(lay: Layout, host: str, ca: Path) -> Path:
    """Makes the local cluster's nodes trust CA for HOST, once their containerd reads
    LAY.registry_hosts (a cluster started before that setting existed does not)."""
    for node in lay.nodes:
        config = node.state / "containerd.toml"
        if config.exists() and f'config_path = "{lay.registry_hosts}"' not in config.read_text():
            raise ClusterError(f"{node.name}'s containerd does not read {lay.registry_hosts}: "
                               "run 'chaos-drill cluster down', then 'cluster up' again")
    return trust(lay.registry_hosts, host, ca)
