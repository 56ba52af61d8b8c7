"""Where the files chaos-drill ships live: manifests/ (workloads, add-ons, the CRD, drills,
monitoring), dashboards/ and cluster/ (image build scripts), found from one place so every module
asks the same function, whether it runs from a checkout or from a copy of chaos/ beside them."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The directory that holds chaos/ and, beside it, manifests/, dashboards/ and cluster/."""


def shipped(*parts: str) -> Path:
    """The path of a shipped file or directory: shipped("manifests", "crds", "chaosdrill.yaml")."""
    return ROOT.joinpath(*parts)
