"""The parts of the kind node image that are plainer in Python, run by cluster/kind/build.sh:
the control-plane image archives kubeadm expects (a static binary each, no registry) and the node
image itself as a `docker load` directory made from a root filesystem."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import posixpath
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from chaos.images.archive import add_entry, config_bytes, packed
from chaos.resources import KUBERNETES_VERSION

NODE_IMAGE = f"chaosdrill.local/kind-node:v{KUBERNETES_VERSION}"
PATH = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_ENTRYPOINT = ["/usr/local/bin/entrypoint", "/sbin/init"]
NODE_STOP_SIGNAL = "SIGRTMIN+3"
"""systemd's "halt": `docker stop` of a node then shuts it down cleanly, as kind's image does."""
IPTABLES_LINKS = ("iptables", "iptables-save", "iptables-restore",
                  "ip6tables", "ip6tables-save", "ip6tables-restore")
XTABLES = "usr/lib/x86_64-linux-gnu/xtables"
TOOL_TIMEOUT = 1200
SYSCTL_FILES = ("etc/sysctl.conf", "etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d",
                "usr/lib/sysctl.d", "lib/sysctl.d")
"""Where a node's systemd-sysctl reads settings at boot."""
NAMESPACED_SYSCTLS = ("net.", "fs.mqueue.", "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                      "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced", "kernel.hostname", "kernel.domainname")
"""Settings that live in a container's own namespaces (runc's list). A kind node is privileged,
so any other key its systemd-sysctl applies (Debian's fs.protected_* links policy,
kernel.pid_max) is written to the host's kernel."""


@dataclass
class Tree:
    """Files and symlinks of one image layer, by path relative to /."""

    files: dict[str, Path] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)


def collect(root: Path, path: str, tree: Tree, depth: int = 0) -> None:
    """Adds PATH (absolute, inside ROOT) to TREE, with every symlink met on the way to the file,
    so that the same path resolves the same way inside the image."""
    if depth > 16:
        raise ValueError(f"too many symlinks resolving {path} in {root}")
    parts = PurePosixPath(path).parts[1:]
    current = PurePosixPath("/")
    for index, part in enumerate(parts):
        candidate = current / part
        relative = str(candidate).lstrip("/")
        if (root / relative).is_symlink():
            target = os.readlink(root / relative)
            tree.links[relative] = target
            resolved = posixpath.normpath(posixpath.join(str(current), target))
            collect(root, str(PurePosixPath(resolved, *parts[index + 1:])), tree, depth + 1)
            return
        current = candidate
    tree.files[str(current).lstrip("/")] = root / str(current).lstrip("/")


def needed_libraries(root: Path, binary: str) -> list[str]:
    """The shared libraries BINARY (absolute, inside ROOT) loads, as ldd in ROOT lists them."""
    result = subprocess.run(["chroot", str(root), "/usr/bin/ldd", binary], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0 and "not a dynamic executable" not in result.stdout + result.stderr:
        raise RuntimeError(f"ldd {binary} in {root} failed: {result.stderr.strip()}")
    return [word for line in result.stdout.splitlines() for word in line.split()
            if word.startswith("/")]


def with_libraries(root: Path, binaries: list[str], tree: Tree) -> None:
    for binary in binaries:
        collect(root, binary, tree)
        for library in needed_libraries(root, binary):
            collect(root, library, tree)


def layer(tree: Tree) -> bytes:
    """TREE as a deterministic layer: parent directories first, no timestamps."""
    directories = {str(parent) for name in [*tree.files, *tree.links]
                   for parent in PurePosixPath(name).parents if str(parent) != "."}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        add_entry(tar, "tmp", mode=0o1777)
        for directory in sorted(directories - {"tmp"}):
            add_entry(tar, directory)
        for name, target in sorted(tree.links.items()):
            if name not in directories:
                add_entry(tar, name, link=target)
        for name, source in sorted(tree.files.items()):
            add_entry(tar, name, source.read_bytes(), mode=source.stat().st_mode & 0o7777)
    return buffer.getvalue()


def binary_archive(reference: str, tree: Tree, entrypoint: list[str] | None = None) -> bytes:
    """A `docker save` archive of TREE with PATH set; kubeadm's pods name their own command."""
    layer_bytes = layer(tree)
    diff_id = f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"
    config: dict[str, object] = {"Env": [PATH], "WorkingDir": "/"}
    if entrypoint:
        config["Entrypoint"] = entrypoint
    return packed(reference, layer_bytes, config_bytes(config, diff_id))


@dataclass(frozen=True)
class Inputs:
    """Where build.sh put each binary."""

    rootfs: Path
    kubernetes_bin: Path
    etcd: Path
    etcd_version: str
    coredns: Path
    coredns_version: str
    pause: Path
    pause_version: str


def single(path: Path, at: str) -> Tree:
    return Tree(files={at: path})


def control_plane_archives(inputs: Inputs) -> dict[str, bytes]:
    """File name -> archive for every image a kubeadm v1.34 control plane runs here."""
    archives: dict[str, bytes] = {}
    k8s = f"v{KUBERNETES_VERSION}"
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        tree = single(inputs.kubernetes_bin / name, f"usr/local/bin/{name}")
        archives[f"{name}.tar"] = binary_archive(f"registry.k8s.io/{name}:{k8s}", tree)
    proxy = single(inputs.kubernetes_bin / "kube-proxy", "usr/local/bin/kube-proxy")
    xtables = sorted(f"/{XTABLES}/{p.name}" for p in (inputs.rootfs / XTABLES).glob("*.so"))
    with_libraries(inputs.rootfs, ["/usr/sbin/xtables-nft-multi", "/usr/sbin/conntrack",
                                   *xtables], proxy)
    for link in IPTABLES_LINKS:
        proxy.links[f"usr/sbin/{link}"] = "xtables-nft-multi"
    archives["kube-proxy.tar"] = binary_archive(f"registry.k8s.io/kube-proxy:{k8s}", proxy)
    archives["etcd.tar"] = binary_archive(f"chaosdrill.local/etcd:v{inputs.etcd_version}",
                                          single(inputs.etcd, "usr/local/bin/etcd"))
    archives["coredns.tar"] = binary_archive(
        f"registry.k8s.io/coredns/coredns:v{inputs.coredns_version}",
        single(inputs.coredns, "coredns"), ["/coredns"])
    archives["pause.tar"] = binary_archive(f"registry.k8s.io/pause:{inputs.pause_version}",
                                           single(inputs.pause, "pause"), ["/pause"])
    return archives


def node_config(diff_id: str) -> bytes:
    return config_bytes({
        "Env": [PATH, "container=docker"], "Entrypoint": NODE_ENTRYPOINT,
        "StopSignal": NODE_STOP_SIGNAL,
    }, diff_id)


def pack_node(rootfs: Path, out: Path, reference: str = NODE_IMAGE) -> str:
    """Writes ROOTFS into OUT as the files of a `docker save` archive (tar them into `docker
    load`) and returns the image ID docker will give it."""
    out.mkdir(parents=True, exist_ok=True)
    layer_path = out / "layer.tar"
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C",
                    str(rootfs), "-cf", str(layer_path), "."], check=True, timeout=TOOL_TIMEOUT)
    digest = hashlib.sha256()
    with layer_path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    (out / digest.hexdigest()).mkdir(exist_ok=True)
    layer_path.rename(out / digest.hexdigest() / "layer.tar")
    config = node_config(f"sha256:{digest.hexdigest()}")
    config_id = hashlib.sha256(config).hexdigest()
    (out / f"{config_id}.json").write_bytes(config)
    manifest = [{"Config": f"{config_id}.json", "RepoTags": [reference],
                 "Layers": [f"{digest.hexdigest()}/layer.tar"]}]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "image-id").write_text(f"sha256:{config_id}\n")
    return f"sha256:{config_id}"


def sysctl_key(line: str) -> str | None:
    """The key a sysctl.d line sets, dotted, or None for a comment or blank line."""
    line = line.strip()
    if not line or line[0] in "#;":
        return None
    key = line.split("=", 1)[0].strip().lstrip("-")
    return key.replace("/", ".") if "." not in key else key


def host_wide(key: str) -> bool:
    return not key.startswith(NAMESPACED_SYSCTLS)


def _inside(root: Path, path: Path, depth: int = 0) -> Path:
    """PATH (under ROOT) with every symlink on its way resolved inside ROOT, not on the host."""
    if depth > 16:
        raise ValueError(f"too many symlinks at {path}")
    current = root
    parts = path.relative_to(root).parts
    for index, part in enumerate(parts):
        candidate = current / part
        if candidate.is_symlink():
            target = os.readlink(candidate)
            base = root if target.startswith("/") else current
            joined = Path(os.path.normpath(base / target.lstrip("/")))
            if not joined.is_relative_to(root):
                joined = root
            return _inside(root, joined.joinpath(*parts[index + 1:]), depth + 1)
        current = candidate
    return current


def sysctl_files(root: Path) -> list[Path]:
    """Every file under ROOT the node's systemd-sysctl would read, each once."""
    found: dict[str, Path] = {}
    for place in SYSCTL_FILES:
        where = _inside(root, root / place)
        candidates = sorted(where.glob("*.conf")) if where.is_dir() else [where]
        for path in candidates:
            real = _inside(root, path)
            if real.is_file():
                found.setdefault(str(real), real)
    return list(found.values())


def drop_host_sysctls(root: Path) -> list[str]:
    """Removes from ROOT's sysctl files every setting that is not namespaced, so a node never
    changes the host's kernel (a file left with none is deleted); returns the keys dropped."""
    dropped: list[str] = []
    for path in sysctl_files(root):
        lines = path.read_text().splitlines()
        keys = [sysctl_key(line) for line in lines]
        wide = [key for key in keys if key is not None and host_wide(key)]
        if not wide:
            continue
        dropped += wide
        if len(wide) == sum(key is not None for key in keys):
            path.unlink()
            continue
        path.write_text("".join(
            f"# host-wide, left to the host: {line.strip()}\n"
            if key is not None and host_wide(key) else f"{line}\n"
            for line, key in zip(lines, keys, strict=True)))
    return sorted(set(dropped))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.images.node")
    commands = parser.add_subparsers(dest="command", required=True)
    archives = commands.add_parser("archives", help="write the control-plane image archives")
    archives.add_argument("out", type=Path)
    for name in ("rootfs", "kubernetes-bin", "etcd", "coredns", "pause"):
        archives.add_argument(f"--{name}", type=Path, required=True)
    for name in ("etcd-version", "coredns-version", "pause-version"):
        archives.add_argument(f"--{name}", required=True)
    pack = commands.add_parser(
        "pack", help="drop host-wide sysctls, write a root filesystem as a docker load directory")
    pack.add_argument("rootfs", type=Path)
    pack.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "archives":
        inputs = Inputs(args.rootfs, args.kubernetes_bin, args.etcd, args.etcd_version,
                        args.coredns, args.coredns_version, args.pause, args.pause_version)
        shutil.rmtree(args.out, ignore_errors=True)
        args.out.mkdir(parents=True)
        for name, data in control_plane_archives(inputs).items():
            (args.out / name).write_bytes(data)
            print(f"    {name}: {len(data) >> 20} MiB", flush=True)
    else:
        dropped = drop_host_sysctls(args.rootfs)
        print(f"    host-wide sysctls dropped: {', '.join(dropped) or 'none'}", flush=True)
        print(f"    {NODE_IMAGE}: image {pack_node(args.rootfs, args.out)}", flush=True)


if __name__ == "__main__":
    main()
