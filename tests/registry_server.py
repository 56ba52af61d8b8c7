"""A real registry for the tests: Debian's docker-registry (CNCF Distribution) with its own
config file, serving TLS from a CA made here on one local address, started and stopped by its
PID; its temporary folder (CA, storage, log) is removed afterwards."""

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

import pytest
import yaml

from chaos.cluster import pki

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
