"""Images through a real registry: Debian's docker-registry serving TLS from a CA made here,
`images push` into it, and the local cluster's containerd pulling from it (trusting that CA
through its certs.d, no insecure flag) when `deploy --image-registry` names it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.cluster import kube, pki, registry_hosts, workloads
from chaos.cluster import layout as L
from chaos.cluster.local import LocalCluster

from support import cli, one_error

pytestmark = pytest.mark.e2e

# -- a real registry: Debian's docker-registry (CNCF Distribution) with its own config file,
# serving TLS from a CA made here on one local address, started and stopped by its PID; its
# temporary folder (CA, storage, log) is removed afterwards

BINARY = "/usr/bin/docker-registry"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Registry:
    host: str
    """HOST:PORT, what image names start with."""
    ca: Path
    log: Path
    pid: int

    def pulled_manifests(self) -> list[str]:
        """The request URIs of every manifest GET the registry logged (its access log)."""
        uris = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                uri = entry.get("http.request.uri", "")
                if entry.get("http.request.method") == "GET" and "/manifests/" in uri:
                    uris.append(uri)
        return uris


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd, from Python's crypt (deprecated, so in a child process)."""
    code = ("import crypt, sys; print(crypt.crypt(sys.argv[1], "
            "crypt.mksalt(crypt.METHOD_BLOWFISH)))")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code, password],
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


def write_config(folder: Path, address: str, port: int, users: dict[str, str]) -> Path:
    pki_dir = pki.private_dir(folder / "pki")
    pki.make_ca(pki_dir, "chaos-drill-test-registry-ca")
    pki.issue(pki_dir, pki.CertRequest("registry", "registry", ip_addresses=(address,),
                                       server=True, client=False))
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(folder / "storage")}},
        "http": {"addr": f"{address}:{port}", "secret": os.urandom(16).hex(),
                 "tls": {"certificate": str(pki_dir / "registry.crt"),
                         "key": str(pki_dir / "registry.key")}},
    }
    if users:
        htpasswd = folder / "htpasswd"
        htpasswd.write_text("".join(f"{user}:{bcrypt_hash(secret)}\n"
                                    for user, secret in users.items()))
        config["auth"] = {"htpasswd": {"realm": "chaos-drill-test", "path": str(htpasswd)}}
    path = folder / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_listening(address: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry not listening on {address}:{port} in {START_TIMEOUT}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stops the registry by its PID: SIGTERM, then SIGKILL after STOP_TIMEOUT."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running(address: str, users: dict[str, str] | None = None) -> Iterator[Registry]:
    """A registry serving HTTPS on ADDRESS (a free port), with htpasswd USERS if given."""
    if not Path(BINARY).exists():
        pytest.skip(f"{BINARY} not found: run 'make setup' (installs Debian's docker-registry)")
    folder = Path(tempfile.mkdtemp(prefix="chaos-drill-registry-"))
    try:
        port = free_port(address)
        config = write_config(folder, address, port, users or {})
        log = folder / "registry.log"
        with log.open("wb") as sink:
            process = subprocess.Popen([BINARY, "serve", str(config)], stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_listening(address, port, process, log)
            yield Registry(f"{address}:{port}", folder / "pki" / "ca.crt", log, process.pid)
        finally:
            stop(process)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SAMPLE_APPS = ("web", "api")


def _say(message: str) -> None:
    print(f"[registry] {message}", flush=True)


def pushed(registry: Registry, *env_extra: tuple[str, str]) -> dict[str, str]:
    """`images push` into REGISTRY; the manifest digest of each image it pushed, by name."""
    env = {**os.environ, **dict(env_extra)}
    result = cli("images", "push", registry.host, "--ca-file", str(registry.ca), env=env)
    assert result.returncode == 0, result.stderr
    digests = {}
    for line in result.stderr.splitlines():
        if ": pushed " in line and " manifest " in line:
            target = line.split(": pushed ", 1)[1].split(":")[1].split("/")[-1]
            digests[target] = line.rsplit(" manifest ", 1)[1]
    assert set(digests) == {"web", "operator", "prometheus"}, result.stderr
    return digests


@pytest.fixture
def bridge_registry(cluster: LocalCluster) -> Iterator[Registry]:
    """A registry on the cluster's bridge address, trusted by the nodes through
    `cluster up --registry-ca`; afterwards the sample workload is put back on the loaded images,
    the CA's folder removed and the registry stopped by its PID."""
    config = (cluster.lay.node(1).state / "containerd.toml").read_text()
    if "config_path" not in config:  # a cluster started before containerd read certs.d
        cluster.down(_say)
        cluster.up(_say)
    with running(L.NODE_IP) as registry:
        try:
            yield registry
        finally:
            workloads.deploy(cluster, _say, timeout=120)
            registry_hosts.forget(cluster.lay.registry_hosts, registry.host)


def sample_pods(api: Any) -> list[Any]:
    core = client.CoreV1Api(api)
    return [pod for app in SAMPLE_APPS for pod in core.list_namespaced_pod(
        "demo", label_selector=f"app={app}", _request_timeout=30).items
        if pod.metadata.deletion_timestamp is None]


def test_deploy_pulls_the_pushed_images_from_a_tls_registry(
        cluster: LocalCluster, bridge_registry: Registry) -> None:
    registry = bridge_registry
    digests = pushed(registry)
    trusted = cli("cluster", "up", "--registry-ca", f"{registry.host}={registry.ca}")
    assert trusted.returncode == 0, trusted.stderr
    hosts = cluster.lay.registry_hosts / registry.host / "hosts.toml"
    assert f'ca = "{cluster.lay.registry_hosts / registry.host / "ca.crt"}"' in hosts.read_text()
    assert "insecure" not in hosts.read_text()

    deployed = cli("deploy", "--image-registry", registry.host)
    assert deployed.returncode == 0, deployed.stderr
    assert "nothing loaded into the nodes" in deployed.stderr
    assert "importing" not in deployed.stderr

    api = kube.api_client(cluster.kubeconfig())
    pods = sample_pods(api)
    assert len(pods) == 5  # web 3, api 2
    for pod in pods:
        container = pod.spec.containers[0]
        assert container.image == f"{registry.host}/web:1"
        assert container.image_pull_policy == "Always"
        status = pod.status.container_statuses[0]
        assert status.ready, pod.metadata.name
        # the runtime's record of where the image came from, and the digest the push reported
        assert status.image_id == f"{registry.host}/web@{digests['web']}", status.image_id
    # the registry's own log: the nodes fetched that manifest (by the digest the tag resolved to)
    assert f"/v2/web/manifests/{digests['web']}" in registry.pulled_manifests()


def test_push_errors_are_one_line() -> None:
    closed = f"127.0.0.1:{free_port('127.0.0.1')}"
    message = one_error(cli("images", "push", closed))
    assert f"registry {closed} unreachable" in message and "is it up" in message
    with running("127.0.0.1", {"alice": "right"}) as registry:
        untrusted = one_error(cli("images", "push", registry.host))
        assert f"TLS to {registry.host} failed" in untrusted
        assert "not signed by the system's CAs" in untrusted and "--ca-file" in untrusted
        anonymous = one_error(cli("images", "push", registry.host, "--ca-file",
                                  str(registry.ca)))
        assert f"{registry.host} denied pushing web anonymously (HTTP 401)" in anonymous
        env = {**os.environ, "CHAOS_DRILL_REGISTRY_USERNAME": "alice",
               "CHAOS_DRILL_REGISTRY_PASSWORD": "wrong"}
        wrong = one_error(cli("images", "push", registry.host, "--ca-file", str(registry.ca),
                              env=env))
        assert "denied pushing web with the credentials from CHAOS_DRILL_REGISTRY" in wrong
        assert registry.pulled_manifests() == []
        env["CHAOS_DRILL_REGISTRY_PASSWORD"] = "right"
        assert pushed(registry, *env.items())["web"].startswith("sha256:")
    bad_name = one_error(cli("deploy", "--image-registry", "https://ghcr.io/org"), alone=True)
    assert "is not HOST[:PORT][/PATH]" in bad_name
