"""The in-cluster Prometheus image: Debian bookworm's prometheus binary (from the root
cluster/prometheus/build.sh makes with debootstrap) with only the libraries it loads and a passwd
naming nobody, in one deterministic layer; and `build()`, which runs that script (cached)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaos.images.node import PATH, Tree, with_libraries
from chaos.images.operator import REPO, image_archive, pack_command, run_build, write_archive

BUILD_SCRIPT = REPO / "cluster" / "prometheus" / "build.sh"
BINARY = "/usr/bin/prometheus"
USER = 65534
"""nobody: Prometheus runs unprivileged (manifests/monitoring/k8s/prometheus.yaml says so too)."""
CONFIG: dict[str, object] = {
    "Entrypoint": [BINARY], "User": f"{USER}:{USER}", "WorkingDir": "/prometheus",
    "Env": [PATH], "ExposedPorts": {"9090/tcp": {}},
}


def prometheus_tree(rootfs: Path, etc: Path) -> Tree:
    """What the image holds: the prometheus binary, the libraries it loads, passwd and group."""
    tree = Tree()
    with_libraries(rootfs, [BINARY], tree)
    (etc / "passwd").write_text(f"root:x:0:0::/root:/sbin/nologin\n"
                                f"nobody:x:{USER}:{USER}::/prometheus:/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nnogroup:x:{USER}:\n")
    tree.files["etc/passwd"], tree.files["etc/group"] = etc / "passwd", etc / "group"
    return tree


def pack(rootfs: Path, archive: Path, reference: str) -> None:
    etc = archive.parent / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    tree = prometheus_tree(rootfs, etc)
    write_archive(archive, reference, image_archive(tree, reference, CONFIG))


def build(progress: Callable[[str], None]) -> tuple[Path, str]:
    """Runs cluster/prometheus/build.sh (cached) and returns the archive and the image's name."""
    return run_build(BUILD_SCRIPT, "prometheus", "prometheus-image", progress)


def main(argv: list[str] | None = None) -> None:
    pack_command("chaos.images.prometheus", pack, argv)


if __name__ == "__main__":
    main()
