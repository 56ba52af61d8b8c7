"""Pushes the `docker save` archives chaos-drill builds to a registry over the Docker Registry
HTTP API v2, in pure Python (no Docker engine, no containerd): each layer gzipped, blobs the
registry has already skipped, then a Docker schema 2 manifest under the image's tag. HTTPS only;
trust comes from the system's CAs or --ca-file."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import socket
import ssl
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import RegistryError, UsageError
from chaos.images import credentials
from chaos.images.credentials import Credentials

TIMEOUT = 60.0
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REGISTRY_PATTERN = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return f"sha256:{hashlib.sha256(self.data).hexdigest()}"


@dataclass(frozen=True)
class Image:
    """One image of an archive, ready to push: its config and gzipped layers."""

    config: Blob
    layers: tuple[Blob, ...]

    def manifest(self) -> bytes:
        def entry(blob: Blob) -> dict[str, object]:
            return {"mediaType": blob.media_type, "size": len(blob.data), "digest": blob.digest}

        return json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": entry(self.config),
                           "layers": [entry(layer) for layer in self.layers]}).encode()


def split_registry(registry: str) -> tuple[str, str]:
    """REGISTRY (HOST[:PORT][/PATH]) as its host and its path prefix ('' if none)."""
    if not REGISTRY_PATTERN.match(registry):
        raise UsageError(f"registry {registry!r} is not HOST[:PORT][/PATH] (e.g. ghcr.io/ORG or "
                         "10.0.0.1:5000): give it without https:// and without a tag")
    host, _, prefix = registry.partition("/")
    return host, prefix.strip("/")


def read_archive(archive: Path) -> Image:
    """The one image of a `docker save` archive, its layers gzipped reproducibly (mtime 0), so a
    second push finds every blob already there."""
    with tarfile.open(archive) as tar:
        def member(name: str) -> bytes:
            extracted = tar.extractfile(name)
            if extracted is None:
                raise RegistryError(f"{archive} lacks {name}: rebuild it")
            return extracted.read()

        entry = json.loads(member("manifest.json"))[0]
        config = Blob(member(entry["Config"]), CONFIG_TYPE)
        layers = tuple(Blob(gzip.compress(member(name), compresslevel=6, mtime=0), LAYER_TYPE)
                       for name in entry["Layers"])
    return Image(config, layers)


class Registry:
    """One registry host: its TLS trust, credentials and the token of each repository."""

    def __init__(self, host: str, ca_file: Path | None = None,
                 auth: Credentials | None = None) -> None:
        self.host, self.ca_file, self.auth = host, ca_file, auth
        try:
            self.context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"cannot read CA file {ca_file} ({error}): give a PEM file") \
                from None
        self.authorization: dict[str, str] = {}

    def url(self, path: str) -> str:
        return f"https://{self.host}{path}"

    def request(self, method: str, url: str, repository: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One request, authorized for REPOSITORY (fetching a token on the first 401); returns
        the status and the response (HTTP errors included, which carry headers too)."""
        for attempt in (1, 2):
            sent = dict(headers or {})
            if repository in self.authorization:
                sent["Authorization"] = self.authorization[repository]
            status, response = self._send(method, url, body, sent)
            if status == 401 and attempt == 1:
                self._authorize(repository, response.headers.get("WWW-Authenticate", ""))
                continue
            return status, response
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, body: bytes | None,
              headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context)
            return response.status, response
        except urllib.error.HTTPError as error:
            return error.code, error
        except urllib.error.URLError as error:
            raise self._unreachable(error.reason) from None
        except (OSError, ssl.SSLError) as error:
            raise self._unreachable(error) from None

    def _unreachable(self, reason: object) -> RegistryError:
        if isinstance(reason, ssl.SSLCertVerificationError):
            trusted = f"the CA in {self.ca_file}" if self.ca_file else (
                f"the system's CAs ({ssl.get_default_verify_paths().openssl_cafile})")
            return RegistryError(
                f"TLS to {self.host} failed: {reason.verify_message}; its certificate is not "
                f"signed by {trusted}: pass the registry's CA with --ca-file CA.pem")
        if isinstance(reason, ssl.SSLError):
            return RegistryError(f"TLS to {self.host} failed ({reason.reason}): does it serve "
                                 "HTTPS on that port?")
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return RegistryError(f"registry {self.host} gave no answer in {TIMEOUT:.0f}s: is it "
                                 "up, and is the address right?")
        return RegistryError(f"registry {self.host} unreachable ({reason}): is it up, and is the "
                             "address right?")

    def _authorize(self, repository: str, challenge: str) -> None:
        """Answers a 401's challenge: Basic sends the credentials; Bearer trades them (or
        nothing) for a token with pull and push on REPOSITORY."""
        scheme, _, rest = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self.auth is None:
                raise self.denied(repository, 401)
            self.authorization[repository] = self.auth.basic()
            return
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host} asks for {scheme or 'no'} auth, which "
                                "chaos-drill does not speak: push with the registry's own tool")
        query = {"scope": f"repository:{repository}:pull,push"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": self.auth.basic()} if self.auth else {}
        url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        status, response = self._send("GET", url, None, headers)
        if status != 200:
            raise self.denied(repository, status)
        answer = json.loads(response.read())
        self.authorization[repository] = f"Bearer {answer.get('token') or answer['access_token']}"

    def denied(self, repository: str, status: int) -> RegistryError:
        who = f"with the credentials from {self.auth.source}" if self.auth else "anonymously"
        return RegistryError(
            f"{self.host} denied pushing {repository} {who} (HTTP {status}): log in with the "
            f"registry's own tool (docker login {self.host}, or its CLI), or set "
            f"{credentials.USERNAME_ENV} and {credentials.PASSWORD_ENV}")

    def check(self, status: int, response: Any, repository: str, what: str,
              expected: tuple[int, ...]) -> None:
        if status in expected:
            return
        if status in (401, 403):
            raise self.denied(repository, status)
        detail = response.read(300).decode(errors="replace").strip()
        raise RegistryError(f"{self.host} refused {what} for {repository} (HTTP {status}: "
                            f"{detail[:200]})")

    def upload(self, repository: str, blob: Blob) -> bool:
        """Uploads BLOB unless the repository has it; True if it was sent."""
        base = f"/v2/{repository}/blobs"
        status, response = self.request("HEAD", self.url(f"{base}/{blob.digest}"), repository)
        if status == 200:
            return False
        status, response = self.request("POST", self.url(f"{base}/uploads/"), repository, b"")
        self.check(status, response, repository, "starting an upload", (202,))
        location = urllib.parse.urljoin(self.url("/"), response.headers["Location"])
        status, response = self.request(
            "PATCH", location, repository, blob.data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob.data))})
        self.check(status, response, repository, "an upload", (202, 204))
        location = urllib.parse.urljoin(self.url("/"), response.headers["Location"])
        separator = "&" if "?" in location else "?"
        status, response = self.request(
            "PUT", f"{location}{separator}digest={blob.digest}", repository, b"",
            {"Content-Length": "0"})
        self.check(status, response, repository, "finishing an upload", (201, 204))
        return True

    def put_manifest(self, repository: str, tag: str, manifest: bytes) -> str:
        status, response = self.request(
            "PUT", self.url(f"/v2/{repository}/manifests/{tag}"), repository, manifest,
            {"Content-Type": MANIFEST_TYPE})
        self.check(status, response, repository, "the manifest", (201, 202))
        digest = hashlib.sha256(manifest).hexdigest()
        return str(response.headers.get("Docker-Content-Digest") or f"sha256:{digest}")


def push(archive: Path, target: str, ca_file: Path | None,
         progress: Callable[[str], None]) -> str:
    """Pushes ARCHIVE's image as TARGET (HOST[:PORT]/REPOSITORY:TAG); returns its digest."""
    name, _, tag = target.rpartition(":")
    host, repository = split_registry(name)
    registry = Registry(host, ca_file, credentials.find(host))
    image = read_archive(archive)
    sent = [blob for blob in (*image.layers, image.config) if registry.upload(repository, blob)]
    size = sum(len(blob.data) for blob in sent)
    digest = registry.put_manifest(repository, tag, image.manifest())
    progress(f"pushed {target}: {len(sent)} of {len(image.layers) + 1} blobs sent "
             f"({size / 2**20:.1f} MiB), manifest {digest}")
    return digest
