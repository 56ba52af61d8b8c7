"""The registry side of images: names in a registry, manifests rewritten to pull from there, the
archive read into blobs and a manifest, credentials found where login tools leave them, and
containerd's hosts.toml for a registry's CA."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from chaos.cluster import registry_hosts, workloads
from chaos.errors import UsageError
from chaos.images import catalog, credentials, push, sample
from chaos.monitoring.install import prometheus_documents
from chaos.observe.prober_pod import IMAGE_ENV
from chaos.operator.install import operator_documents

REGISTRY = "registry.example:5000/team"


def containers(docs: list[dict[str, object]]) -> list[dict[str, object]]:
    found = []
    for doc in docs:
        if doc["kind"] == "Deployment":
            found += doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    return found


def test_in_registry_keeps_name_and_tag_and_leaves_other_images_alone() -> None:
    assert catalog.in_registry("chaosdrill.local/web:1", REGISTRY) == f"{REGISTRY}/web:1"
    assert catalog.in_registry("chaosdrill.local/operator:abc", "ghcr.io/org/") == \
        "ghcr.io/org/operator:abc"
    assert catalog.in_registry("grafana/grafana:11.2.2", REGISTRY) == "grafana/grafana:11.2.2"


def test_sample_workloads_pull_from_the_registry() -> None:
    docs = list(workloads.documents())
    before = copy.deepcopy(docs)
    rewritten = catalog.pulled_from(docs, REGISTRY)
    assert docs == before  # the input is left as it was
    images = containers(rewritten)
    assert [c["image"] for c in images] == [f"{REGISTRY}/web:1"] * 2  # api and web
    assert {c["imagePullPolicy"] for c in images} == {"Always"}
    assert catalog.pulled_from(docs, None) is docs


def test_operator_and_its_prober_image_pull_from_the_registry() -> None:
    docs = catalog.pulled_from(operator_documents("chaosdrill.local/operator:abc", ["demo"]),
                               REGISTRY)
    (operator,) = containers(docs)
    assert operator["image"] == f"{REGISTRY}/operator:abc"
    assert operator["imagePullPolicy"] == "Always"
    env = {e["name"]: e.get("value") for e in operator["env"]}  # type: ignore[attr-defined]
    assert env[IMAGE_ENV] == f"{REGISTRY}/operator:abc"


def test_prometheus_pulls_from_the_registry() -> None:
    docs = catalog.pulled_from(prometheus_documents("chaosdrill.local/prometheus:x"), REGISTRY)
    assert [c["image"] for c in containers(docs)] == [f"{REGISTRY}/prometheus:x"]


@pytest.mark.parametrize("name", ["ghcr.io/org", "10.0.0.1:5000", "localhost:5000/a/b",
                                  "123.dkr.ecr.eu-west-1.amazonaws.com"])
def test_registry_names_accepted(name: str) -> None:
    host, prefix = push.split_registry(name)
    assert f"{host}/{prefix}".rstrip("/") == name


@pytest.mark.parametrize("name", ["https://ghcr.io/org", "ghcr.io/org/web:1", "", "a b"])
def test_registry_names_refused_with_the_fix(name: str) -> None:
    with pytest.raises(UsageError, match=r"is not HOST\[:PORT\]\[/PATH\]"):
        push.split_registry(name)


def test_archive_becomes_a_config_gzipped_layers_and_a_manifest(tmp_path: Path) -> None:
    archive = tmp_path / "web.tar"
    archive.write_bytes(sample.archive(sample.WEB, b"#!busybox"))
    image = push.read_archive(archive)
    layer = gzip.decompress(image.layers[0].data)
    config = json.loads(image.config.data)
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    manifest = json.loads(image.manifest())
    assert manifest["mediaType"] == push.MANIFEST_TYPE
    assert manifest["config"]["digest"] == image.config.digest
    assert manifest["layers"][0] == {"mediaType": push.LAYER_TYPE,
                                     "size": len(image.layers[0].data),
                                     "digest": image.layers[0].digest}
    assert push.read_archive(archive) == image  # reproducible: a second push sends nothing


def test_credentials_from_env_then_docker_config(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"bob:token").decode()
    config.write_text(json.dumps({"auths": {"https://ghcr.io": {"auth": auth}}}))
    monkeypatch.delenv(credentials.USERNAME_ENV, raising=False)
    found = credentials.find("ghcr.io", config)
    assert found is not None and (found.username, found.password) == ("bob", "token")
    assert credentials.find("quay.io", config) is None
    monkeypatch.setenv(credentials.USERNAME_ENV, "ci")
    monkeypatch.setenv(credentials.PASSWORD_ENV, "secret")
    from_env = credentials.find("ghcr.io", config)
    assert from_env is not None and from_env.username == "ci"
    assert from_env.basic() == "Basic " + base64.b64encode(b"ci:secret").decode()


def test_missing_credential_helper_is_named(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"x.example": "nosuchhelper"}}))
    monkeypatch.delenv(credentials.USERNAME_ENV, raising=False)
    with pytest.raises(Exception, match="docker-credential-nosuchhelper, which is not"):
        credentials.find("x.example", config)


def test_hosts_toml_trusts_the_ca_over_https(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("PEM")
    folder = registry_hosts.trust(tmp_path / "certs.d", "10.0.0.1:5000", ca,
                                  inside=Path("/etc/containerd/certs.d"))
    hosts = tomllib.loads((folder / "hosts.toml").read_text())
    assert hosts["server"] == "https://10.0.0.1:5000"
    host = hosts["host"]["https://10.0.0.1:5000"]
    assert host["ca"] == "/etc/containerd/certs.d/10.0.0.1:5000/ca.crt"
    assert "skip_verify" not in host and host["capabilities"] == ["pull", "resolve"]
    assert (folder / "ca.crt").read_text() == "PEM"
    registry_hosts.forget(tmp_path / "certs.d", "10.0.0.1:5000")
    assert not folder.exists()


@pytest.mark.parametrize("value", ["10.0.0.1:5000", "=ca.pem", "a b=ca.pem"])
def test_registry_ca_values_refused(value: str) -> None:
    with pytest.raises(UsageError, match="is not HOST"):
        registry_hosts.parse(value)


def test_registry_ca_must_be_a_pem_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(UsageError, match="is not a readable PEM certificate"):
        registry_hosts.parse(f"10.0.0.1:5000={tmp_path / 'ca.pem'}")
