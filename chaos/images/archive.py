"""The pieces every image here is packed from: tar entries with fixed owners and times, an image
config with one layer, and a `docker save` style archive around them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path


def add_entry(tar: tarfile.TarFile, name: str, data: bytes | None = None, *, mode: int = 0o755,
         uid: int = 0, link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 0
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def config_bytes(container_config: dict[str, object], diff_id: str) -> bytes:
    """An image config holding one layer, DIFF_ID, and how its container starts."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "chaos-drill images.py"}],
    }
    return json.dumps(config, sort_keys=True).encode()


def packed(reference: str, layer_bytes: bytes, config: bytes) -> bytes:
    """A `docker save` style archive of one image: its layer, its config, a manifest."""
    layer_digest = hashlib.sha256(layer_bytes).hexdigest()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [reference],
                 "Layers": [f"{layer_digest}/layer.tar"]}]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add_entry(tar, f"{layer_digest}/layer.tar", layer_bytes, mode=0o644)
        add_entry(tar, config_name, config, mode=0o644)
        add_entry(tar, "manifest.json", json.dumps(manifest).encode(), mode=0o644)
    return buffer.getvalue()


def image_of(archive: Path) -> tuple[str, str]:
    """(reference, image ID) of the one image in a `docker save` style ARCHIVE made by
    `packed`: the ID is its config's digest, as a runtime reports it (`crictl images`)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive} holds no manifest.json")
        (entry,) = json.loads(member.read())
    return entry["RepoTags"][0], "sha256:" + entry["Config"].removesuffix(".json")
