"""Images in a kind cluster's nodes: which archives every node already holds (the node image
`make kind` builds preloads the sample app's and metrics-server's), loading the others into all
nodes at once, and the prober's image while `up` waits."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaos.cluster import dockerd
from chaos.cluster.base import Progress
from chaos.errors import ClusterError
from chaos.images.archive import image_of

CREATE_SECONDS = 600.0
"""At most how long the prober's load waits for `kind create` to end before its second try."""


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


def preload_prober(nodes: Callable[[], list[str]], created: threading.Event,
                   load: Callable[[Sequence[Path]], object]) -> None:
    """On a one-node cluster, the operator image (which prober pods run) through LOAD, when it
    was built here before (never a cold build): on kind a drill's probe runs from the cluster,
    and loading it takes about 8 s off the first drill. It starts while `kind create` runs
    (CREATED not yet set), once the node's kubelet is started: kind restarts containerd before
    kubeadm starts it. Into three nodes it took `up` 7-11 s longer on 2 cores: there the first
    drill loads it."""
    from chaos.images import operator as operator_image

    if not operator_image.built_before():
        return
    while not created.is_set() and not (len(found := nodes()) == 1 and _kubelet_on(found[0])):
        if len(found) > 1:
            return
        created.wait(0.3)
    if len(nodes()) != 1:
        return
    archive, _ = operator_image.build(lambda _: None)
    try:
        load([archive])
    except ClusterError:  # its containerd restarted under it, say: once more after the create
        created.wait(CREATE_SECONDS)
        load([archive])


def _kubelet_on(node: str) -> bool:
    try:
        dockerd.run("exec", node, "systemctl", "is-active", "--quiet", "kubelet", timeout=30)
    except ClusterError:
        return False
    return True
