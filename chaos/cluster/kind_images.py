"""Images in a kind cluster's nodes: which archives every node already holds (the node image
`make kind` builds preloads the sample app's and metrics-server's), loading the others into all
nodes at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaos.cluster import dockerd
from chaos.cluster.base import Progress
from chaos.errors import ClusterError
from chaos.images.archive import image_of


def runtimes_answer(nodes: Sequence[str]) -> bool:
    """Whether containerd answers in every one of NODES: a node container started again runs
    it a moment later, while its Node may still read Ready from before it stopped."""
    try:
        for node in nodes:
            dockerd.run("exec", node, "crictl", "info", timeout=30)
    except ClusterError:
        return False
    return True


def held(node: str) -> set[tuple[str, str]]:
    """(reference, image ID) of every image NODE's runtime holds."""
    out = dockerd.run("exec", node, "crictl", "images", "-o", "json", timeout=60)
    return {(tag, image["id"]) for image in json.loads(out).get("images") or []
            for tag in image.get("repoTags") or []}


def missing(nodes: Sequence[str], archives: Sequence[Path]) -> list[Path]:
    """The ARCHIVES whose image (the same reference and ID) some of NODES lacks."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        holdings = list(pool.map(held, nodes))
    return [a for a in archives if not all(image_of(a) in h for h in holdings)]


def load(nodes: Sequence[str], archives: Sequence[Path], where: str, progress: Progress,
         load_one: Callable[[Path], object]) -> None:
    """Loads the ARCHIVES some of NODES lacks with LOAD_ONE(archive), all at once (each `kind
    load` fills every node); the first error is raised."""
    todo = missing(nodes, archives)
    if not todo:
        return
    progress(f"loading {', '.join(a.name for a in todo)} into {where}")
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        for done in [pool.submit(load_one, archive) for archive in todo]:
            done.result()
