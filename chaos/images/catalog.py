"""Every image chaos-drill runs in a cluster (the sample app, the operator, which also runs the
prober pod, and the in-cluster Prometheus), their names in a registry, and the manifests
rewritten to pull them from there (`--image-registry`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.images import operator, prometheus, sample

LOCAL_PREFIX = "chaosdrill.local/"
"""The name every image built here carries; only these are rewritten."""
PULL_POLICY = "Always"
"""Tags such as web:1 are reused by newer builds: a node pulls whatever the tag names now."""
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def in_registry(reference: str, registry: str) -> str:
    """REFERENCE (chaosdrill.local/NAME:TAG) as REGISTRY/NAME:TAG; others unchanged."""
    if not reference.startswith(LOCAL_PREFIX):
        return reference
    return f"{registry.rstrip('/')}/{reference.removeprefix(LOCAL_PREFIX)}"


def archives(progress: Callable[[str], None]) -> list[tuple[Path, str]]:
    """(archive, reference) of every image a cluster runs, each built if missing (cached)."""
    built = sample.build_archives(sample.archive_dir())
    web = next(path for path, image in zip(built, sample.ALL, strict=True)
               if image is sample.WEB)
    return [(web, sample.WEB.reference), operator.build(progress), prometheus.build(progress)]


def pulled_from(docs: list[dict[str, Any]], registry: str | None) -> list[dict[str, Any]]:
    """DOCS with each container image built here (and each env value naming one, such as the
    prober's image) named in REGISTRY and pulled; DOCS unchanged if REGISTRY is None."""
    if registry is None:
        return docs
    rewritten = copy.deepcopy(docs)
    for doc in rewritten:
        spec = _pod_spec(doc)
        if spec is None:
            continue
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            image = container.get("image", "")
            if image.startswith(LOCAL_PREFIX):
                container["image"] = in_registry(image, registry)
                container["imagePullPolicy"] = PULL_POLICY
            for variable in container.get("env", []):
                value = variable.get("value")
                if isinstance(value, str) and value.startswith(LOCAL_PREFIX):
                    variable["value"] = in_registry(value, registry)
    return rewritten


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "Pod":
        return doc.get("spec")
    if doc.get("kind") in POD_KINDS:
        spec: dict[str, Any] = doc.get("spec", {}).get("template", {}).get("spec")
        return spec
    return None
