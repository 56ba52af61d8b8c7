"""The operator image: packs Debian's python3.11 (only the libraries it loads), the pinned
dependencies and chaos/ into one deterministic layer, run by cluster/operator/build.sh; and
`build()`, which runs that script (cached: warm, it only checks) for `chaos-drill operator
install`; the packing and build steps serve chaos.images.prometheus too."""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from chaos.errors import SetupError
from chaos.images.archive import config_bytes, packed
from chaos.images.node import PATH, Tree, collect, layer, needed_libraries
from chaos.resources import SOURCE_ROOT, shipped

REPO = shipped()
BUILD_SCRIPT = REPO / "cluster" / "operator" / "build.sh"
BUILD_TIMEOUT = 1800
USER = 65532
"""The unprivileged user the operator runs as (the Deployment says so too)."""
STDLIB = "usr/lib/python3.11"
STDLIB_LEFT_OUT = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                   "pydoc_data", "distutils", "venv", "config-3.11-x86_64-linux-gnu")
SOURCES, DEPS = "app/src", "app/lib"
ENTRYPOINT = ["/usr/bin/python3.11", "-m", "chaos", "operator"]


def add_directory(root: Path, relative: str, tree: Tree, left_out: tuple[str, ...] = ()) -> None:
    """Every file and symlink under ROOT/RELATIVE, but for the top-level names in LEFT_OUT."""
    top = root / relative
    for directory, subdirectories, files in os.walk(top):
        here = Path(directory)
        if here == top:
            subdirectories[:] = [d for d in subdirectories if d not in left_out]
        for name in [*subdirectories, *files]:
            path = here / name
            inside = str(path.relative_to(root))
            if path.is_symlink():
                tree.links[inside] = os.readlink(path)
            elif path.is_file():
                tree.files[inside] = path


def operator_tree(rootfs: Path, etc: Path) -> Tree:
    """What the image holds: python3.11 and the libraries it and every extension module load,
    the standard library, the dependencies, chaos-drill, and a passwd naming USER."""
    tree = Tree()
    add_directory(rootfs, STDLIB, tree, STDLIB_LEFT_OUT)
    add_directory(rootfs, DEPS, tree)
    add_directory(rootfs, SOURCES, tree)
    binaries = ["/usr/bin/python3.11"] + sorted(
        f"/{name}" for name in tree.files if ".so" in Path(name).name)
    for binary in binaries:
        collect(rootfs, binary, tree)
        for library in needed_libraries(rootfs, binary):
            collect(rootfs, library, tree)
    (etc / "passwd").write_text(f"root:x:0:0::/root:/sbin/nologin\n"
                                f"operator:x:{USER}:{USER}::/tmp:/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\noperator:x:{USER}:\n")
    tree.files["etc/passwd"], tree.files["etc/group"] = etc / "passwd", etc / "group"
    return tree


def image_archive(tree: Tree, reference: str, container_config: dict[str, object]) -> bytes:
    """TREE as the one layer of image REFERENCE, started as CONTAINER_CONFIG says."""
    layer_bytes = layer(tree)
    diff_id = f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"
    return packed(reference, layer_bytes, config_bytes(container_config, diff_id))


OPERATOR_CONFIG: dict[str, object] = {
    "Entrypoint": ENTRYPOINT, "User": f"{USER}:{USER}", "WorkingDir": "/tmp",
    "Env": [PATH, f"PYTHONPATH=/{SOURCES}:/{DEPS}", "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1", "HOME=/tmp"],
}


def write_archive(archive: Path, reference: str, data: bytes) -> None:
    """Writes the image archive and, beside it, `reference` naming the image."""
    archive.write_bytes(data)
    (archive.parent / "reference").write_text(reference + "\n")
    print(f"    {reference}: {len(data) >> 20} MiB, sha256 {hashlib.sha256(data).hexdigest()}",
          flush=True)


def pack(rootfs: Path, archive: Path, reference: str) -> None:
    etc = archive.parent / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    tree = operator_tree(rootfs, etc)
    write_archive(archive, reference, image_archive(tree, reference, OPERATOR_CONFIG))


def run_build(script: Path, what: str, make_target: str,
              progress: Callable[[str], None]) -> tuple[Path, str]:
    """Runs a cluster/*/build.sh (cached: warm, it only checks) and returns the archive it
    printed last and the image's name."""
    python = os.environ.get("PYTHON", sys.executable)
    # timeout(1) signals the script's whole process group, so stderr closes at the deadline
    command = ["timeout", "-k", "10", str(BUILD_TIMEOUT), "bash", str(script)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHON": python,
                                                "CHAOS_DRILL_SOURCE_ROOT": str(SOURCE_ROOT)})
    assert process.stderr is not None and process.stdout is not None
    for line in process.stderr:
        progress(line.rstrip())
    out = process.stdout.read()
    if process.wait(timeout=30) != 0:
        raise SetupError(f"the {what} image build failed (exit {process.returncode}): run "
                         f"'make {make_target}' to see why")
    archive = Path(out.strip().splitlines()[-1])
    return archive, (archive.parent / "reference").read_text().strip()


def build(progress: Callable[[str], None]) -> tuple[Path, str]:
    """Runs cluster/operator/build.sh (cached) and returns the archive and the image's name."""
    return run_build(BUILD_SCRIPT, "operator", "operator-image", progress)


def pack_command(module: str, packer: Callable[[Path, Path, str], None],
                 argv: list[str] | None = None) -> None:
    """`python -m MODULE pack ROOTFS ARCHIVE --reference REF`, as a build script calls it."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="write the image archive from a built root")
    packing.add_argument("rootfs", type=Path)
    packing.add_argument("archive", type=Path)
    packing.add_argument("--reference", required=True)
    args = parser.parse_args(argv)
    packer(args.rootfs, args.archive, args.reference)


def main(argv: list[str] | None = None) -> None:
    pack_command("chaos.images.operator", pack, argv)


if __name__ == "__main__":
    main()
