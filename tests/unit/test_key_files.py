"""The local cluster's keys and etcd's certificates: private from the first byte, in private
directories, and etcd trusting no certificate but its own CA's."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from chaos.cluster import configs, pki
from chaos.cluster.layout import Layout


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_are_0600_from_their_first_byte_under_umask_022(
        tmp_path: Path, umask_022: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if b"PRIVATE KEY" in data:
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    pki.make_ca(tmp_path)
    pki.make_service_account_keys(tmp_path)
    pki.issue(tmp_path, pki.CertRequest("admin", "admin"))
    assert seen == [0o600, 0o600, 0o600]
    assert [mode(tmp_path / k) for k in ("ca.key", "sa.key", "admin.key")] == [0o600] * 3
    assert mode(tmp_path / "ca.crt") == 0o644
    assert not list(tmp_path.glob(".*partial"))


def test_a_rewritten_key_replaces_the_file_and_stays_private(tmp_path: Path,
                                                             umask_022: None) -> None:
    pki.make_ca(tmp_path)
    (tmp_path / "ca.key").chmod(0o644)  # a loose mode left by anything else
    first = (tmp_path / "ca.key").stat().st_ino
    pki.make_ca(tmp_path)
    assert mode(tmp_path / "ca.key") == 0o600
    assert (tmp_path / "ca.key").stat().st_ino != first  # renamed over, not written in place


def test_every_pki_directory_is_0700(tmp_path: Path, umask_022: None) -> None:
    lay = Layout(tmp_path / "state", tmp_path / "run")
    configs.write_pki(lay)
    assert [mode(d) for d in (lay.pki, lay.front_proxy_pki, lay.etcd_pki)] == [0o700] * 3


def test_etcd_serves_tls_and_accepts_only_its_own_cas_clients(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "state", tmp_path / "run")
    configs.write_pki(lay)
    command = configs.etcd_command(lay)
    assert "--client-cert-auth" in command and "--peer-client-cert-auth" in command
    urls = [command[i + 1] for i, arg in enumerate(command) if arg.endswith("-urls")]
    assert urls and all(url.startswith("https://127.0.0.1:") for url in urls)
    trusted = command[command.index("--trusted-ca-file") + 1]
    assert trusted == str(lay.etcd_pki / "ca.crt")
    etcd_ca = x509.load_pem_x509_certificate((lay.etcd_pki / "ca.crt").read_bytes())
    cluster_ca = x509.load_pem_x509_certificate((lay.pki / "ca.crt").read_bytes())
    assert etcd_ca.subject != cluster_ca.subject  # a CA of its own
    client = x509.load_pem_x509_certificate(
        (lay.etcd_pki / f"{configs.ETCD_CLIENT}.crt").read_bytes())
    client.verify_directly_issued_by(etcd_ca)
    admin = x509.load_pem_x509_certificate((lay.pki / "admin.crt").read_bytes())
    with pytest.raises(ValueError):
        admin.verify_directly_issued_by(etcd_ca)  # kubectl's cert opens nothing in etcd
    apiserver = configs.apiserver_command(lay)
    assert f"--etcd-servers={configs.ETCD_URL}" in apiserver
    assert f"--etcd-certfile={lay.etcd_pki / (configs.ETCD_CLIENT + '.crt')}" in apiserver
