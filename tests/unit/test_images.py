"""Image archives made without Docker: valid `docker save` tarballs whose digests add up, the same
bytes on every build, and a web image whose files belong to the unprivileged app user."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster.workloads import WORKLOADS
from chaos.errors import SetupError
from chaos.images import sample as images

BUSYBOX = b"\x7fELF stand-in for a static busybox binary\n" * 64


def members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Every entry of the tarball DATA with its content (empty for directories and links)."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            file = tar.extractfile(info) if info.isfile() else None
            found[info.name] = (info, file.read() if file else b"")
    return found


def manifest(data: bytes) -> dict[str, Any]:
    entries = json.loads(members(data)["manifest.json"][1])
    assert isinstance(entries, list) and len(entries) == 1
    entry: dict[str, Any] = entries[0]
    return entry


@pytest.mark.parametrize("image", images.ALL, ids=lambda i: i.reference)
def test_manifest_names_the_image_its_config_and_its_layer(image: images.Image) -> None:
    data = images.archive(image, BUSYBOX)
    entry = manifest(data)
    assert entry["RepoTags"] == [image.reference]
    assert set(members(data)) == {"manifest.json", entry["Config"], *entry["Layers"]}


@pytest.mark.parametrize("image", images.ALL, ids=lambda i: i.reference)
def test_digests_add_up(image: images.Image) -> None:
    """The layer's directory is its sha256, the config's name is its own sha256, and the
    config's diff_ids list that same layer digest: what containerd checks on import."""
    data = images.archive(image, BUSYBOX)
    files, entry = members(data), manifest(data)
    (layer_name,) = entry["Layers"]
    layer = files[layer_name][1]
    layer_digest = hashlib.sha256(layer).hexdigest()
    assert layer_name == f"{layer_digest}/layer.tar"
    config_bytes = files[entry["Config"]][1]
    assert entry["Config"] == f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    config = json.loads(config_bytes)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]}
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["Entrypoint"] == list(image.entrypoint)
    assert config["config"]["User"] == image.user


@pytest.mark.parametrize("image", images.ALL, ids=lambda i: i.reference)
def test_archive_bytes_are_deterministic(image: images.Image) -> None:
    assert images.archive(image, BUSYBOX) == images.archive(image, BUSYBOX)
    assert images.archive(image, BUSYBOX) != images.archive(image, BUSYBOX + b"changed")


def test_build_archives_writes_the_same_files_twice(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(BUSYBOX)
    first = {p.name: p.read_bytes() for p in images.build_archives(tmp_path / "a", busybox)}
    second = {p.name: p.read_bytes() for p in images.build_archives(tmp_path / "b", busybox)}
    assert sorted(first) == ["pause-1.tar", "web-1.tar"]
    assert first == second


def test_build_archives_without_busybox_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="make setup"):
        images.build_archives(tmp_path, tmp_path / "no-busybox")


def test_web_layer_serves_files_owned_by_the_app_user() -> None:
    files = members(images.layer(images.WEB, BUSYBOX))
    for path, content in (("www/healthz", b"ok\n"),
                          ("www/index.html", images.INDEX_HTML.encode())):
        info, data = files[path]
        assert info.isfile() and data == content
        assert (info.uid, info.gid) == (images.APP_USER, images.APP_USER) == (65534, 65534)
        assert info.mode == 0o644
    assert files["www"][0].isdir() and files["www"][0].uid == 65534
    assert files["bin/busybox"][1] == BUSYBOX
    assert files["bin/busybox"][0].uid == 0
    assert files["tmp"][0].mode == 0o1777


def test_web_layer_links_every_applet_to_busybox() -> None:
    files = members(images.layer(images.WEB, BUSYBOX))
    for applet in images.APPLETS:
        info, _ = files[f"bin/{applet}"]
        assert info.issym() and info.linkname == "busybox"


def test_pause_layer_holds_only_busybox() -> None:
    assert set(members(images.layer(images.PAUSE, BUSYBOX))) == {"bin", "bin/busybox", "tmp"}


def test_layers_have_no_timestamps() -> None:
    for image in images.ALL:
        assert {info.mtime for info, _ in members(images.layer(image, BUSYBOX)).values()} == {0}


def test_workload_manifests_use_the_built_image() -> None:
    used = set()
    for path in WORKLOADS.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    used.add(container["image"])
                    assert container["imagePullPolicy"] == "IfNotPresent"
    assert used == {images.WEB.reference}
