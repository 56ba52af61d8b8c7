"""The kind node image's Python parts: files collected with the symlinks on their way, layers
that hold them, image configs kubeadm's pods and kind's nodes start from."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from chaos.images import node as nodeimage
from chaos.images.node import Tree


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu/libfoo.so.1.2").write_bytes(b"foo")
    os.symlink("libfoo.so.1.2", root / "usr/lib/x86_64-linux-gnu/libfoo.so.1")
    os.symlink("usr/lib", root / "lib")
    return root


def test_collect_keeps_every_symlink_on_the_way(tmp_path: Path) -> None:
    tree = Tree()
    nodeimage.collect(make_root(tmp_path), "/lib/x86_64-linux-gnu/libfoo.so.1", tree)
    assert tree.links == {"lib": "usr/lib",
                          "usr/lib/x86_64-linux-gnu/libfoo.so.1": "libfoo.so.1.2"}
    assert list(tree.files) == ["usr/lib/x86_64-linux-gnu/libfoo.so.1.2"]


def test_layer_holds_parents_links_and_files_without_timestamps(tmp_path: Path) -> None:
    tree = Tree()
    nodeimage.collect(make_root(tmp_path), "/lib/x86_64-linux-gnu/libfoo.so.1", tree)
    with tarfile.open(fileobj=io.BytesIO(nodeimage.layer(tree))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr"].isdir() and members["usr/lib/x86_64-linux-gnu"].isdir()
    assert members["lib"].issym() and members["lib"].linkname == "usr/lib"
    assert members["usr/lib/x86_64-linux-gnu/libfoo.so.1.2"].size == 3
    assert {m.mtime for m in members.values()} == {0}
    assert nodeimage.layer(tree) == nodeimage.layer(tree)


def archive_config(data: bytes) -> dict[str, object]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return dict(json.load(tar.extractfile(manifest[0]["Config"])))  # type: ignore[arg-type]


def test_control_plane_images_set_path_and_name_their_reference(tmp_path: Path) -> None:
    binary = tmp_path / "kube-apiserver"
    binary.write_bytes(b"\x7fELF")
    data = nodeimage.binary_archive("registry.k8s.io/kube-apiserver:v1.34.4",
                                    nodeimage.single(binary, "usr/local/bin/kube-apiserver"))
    config = archive_config(data)["config"]
    assert config == {"Env": [nodeimage.PATH], "WorkingDir": "/"}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["registry.k8s.io/kube-apiserver:v1.34.4"]


def test_node_config_starts_systemd_through_kinds_entrypoint_and_stops_it_cleanly() -> None:
    config = json.loads(nodeimage.node_config("sha256:abc"))
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/entrypoint", "/sbin/init"]
    assert config["config"]["StopSignal"] == "SIGRTMIN+3"
    assert "container=docker" in config["config"]["Env"]
    assert config["rootfs"]["diff_ids"] == ["sha256:abc"]


def sysctl_root(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    for folder in ("etc/sysctl.d", "usr/lib/sysctl.d"):
        (root / folder).mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")  # merged /usr: read once, not twice
    (root / "usr/lib/sysctl.d/99-protect-links.conf").write_text(
        "# Protected links\nfs.protected_fifos = 1\nfs.protected_hardlinks = 1\n"
        "fs.protected_regular = 2\nfs.protected_symlinks = 1\n")
    (root / "usr/lib/sysctl.d/50-pid-max.conf").write_text("-kernel/pid_max = 4194304\n")
    (root / "etc/sysctl.d/10-network-security.conf").write_text(
        "net.ipv4.conf.default.rp_filter=1\nnet.ipv4.conf.all.rp_filter=1\n")
    (root / "etc/sysctl.d/20-mixed.conf").write_text(
        "; a comment\nkernel.shmmax = 1024\nvm.overcommit_memory = 1\nfs.mqueue.msg_max = 20\n")
    (root / "etc/sysctl.conf").write_text("#kernel.domainname = example.com\n")
    os.symlink("../sysctl.conf", root / "etc/sysctl.d/99-sysctl.conf")
    return root


def test_node_image_keeps_only_namespaced_sysctls(tmp_path: Path) -> None:
    root = sysctl_root(tmp_path)
    dropped = nodeimage.drop_host_sysctls(root)
    assert dropped == ["fs.protected_fifos", "fs.protected_hardlinks", "fs.protected_regular",
                       "fs.protected_symlinks", "kernel.pid_max", "vm.overcommit_memory"]
    # files of host-wide settings only are gone; the node's own network settings stay as written
    assert not (root / "usr/lib/sysctl.d/99-protect-links.conf").exists()
    assert not (root / "usr/lib/sysctl.d/50-pid-max.conf").exists()
    assert (root / "etc/sysctl.d/10-network-security.conf").read_text().count("rp_filter=1") == 2
    mixed = (root / "etc/sysctl.d/20-mixed.conf").read_text().splitlines()
    assert mixed == ["; a comment", "kernel.shmmax = 1024",
                     "# host-wide, left to the host: vm.overcommit_memory = 1",
                     "fs.mqueue.msg_max = 20"]
    assert (root / "etc/sysctl.conf").read_text() == "#kernel.domainname = example.com\n"
    keys = [nodeimage.sysctl_key(line) for path in nodeimage.sysctl_files(root)
            for line in path.read_text().splitlines()]
    assert not [key for key in keys if key is not None and nodeimage.host_wide(key)]
    assert nodeimage.drop_host_sysctls(root) == []


def test_sysctl_symlinks_resolve_inside_the_image_not_on_the_host(tmp_path: Path) -> None:
    root = tmp_path / "node"
    (root / "etc/sysctl.d").mkdir(parents=True)
    (root / "srv").mkdir()
    (root / "srv/elsewhere.conf").write_text("kernel.panic = 10\n")
    os.symlink("/srv/elsewhere.conf", root / "etc/sysctl.d/30-abs.conf")
    assert nodeimage.drop_host_sysctls(root) == ["kernel.panic"]
    assert not (root / "srv/elsewhere.conf").exists()
