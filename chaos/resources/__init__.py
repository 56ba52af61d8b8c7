"""Where chaos-drill's files are: the shipped ones (manifests/: workloads, add-ons, the CRD,
drills, monitoring; dashboards/; cluster/: build scripts), found by one function whether chaos/
runs from a checkout (beside them) or from an installed wheel (package data here); the cache it
builds into, and the versions pinned there."""

from __future__ import annotations

import os
from pathlib import Path

KUBERNETES_VERSION = "1.34.4"
ETCD_VERSION = "3.6.16"
COREDNS_VERSION = "1.12.1"
METRICS_SERVER_VERSION = "0.9.0"
"""The pinned versions built into the cache (cluster/build/build.sh builds the same ones)."""

SHIPPED = ("manifests", "dashboards", "cluster")
"""The top-level folders of shipped files: beside chaos/ in a checkout, in this package when
installed (pyproject.toml maps them here)."""
HERE = Path(__file__).resolve().parent
SOURCE_ROOT = HERE.parent.parent
"""The directory that holds the chaos package: a checkout, or site-packages when installed."""
INSTALLED = (HERE / "manifests").is_dir()
ROOT = HERE if INSTALLED else SOURCE_ROOT
"""The directory that holds manifests/, dashboards/ and cluster/."""


def shipped(*parts: str) -> Path:
    """The path of a shipped file or directory: shipped("manifests", "crds", "chaosdrill.yaml")."""
    return ROOT.joinpath(*parts)


def cache_dir() -> Path:
    """Where chaos-drill keeps what it builds (binaries, images) and its clusters' state."""
    return Path(os.environ.get("CHAOS_DRILL_CACHE", Path.home() / ".cache" / "chaos-drill"))
