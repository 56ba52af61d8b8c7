"""The versions the Python side expects are the ones cluster/build/ builds, and the build module
replaces every staging module that k8s.io/kubernetes itself replaces."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chaos import resources

from support import REPO

BUILD = REPO / "cluster" / "build"
REPLACE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*(\S+)(?:\s+(\S+))?\s*$")


def required(gomod: Path, module: str) -> str:
    """The version GOMOD requires of MODULE, without the leading v."""
    for line in gomod.read_text().splitlines():
        fields = line.replace("require", "").split()
        if len(fields) >= 2 and fields[0] == module:
            return fields[1].removeprefix("v")
    raise AssertionError(f"{gomod} does not require {module}")


def replacements(gomod_text: str) -> dict[str, tuple[str, str | None]]:
    """k8s.io module -> (target, version) for each replace directive, in a block or alone."""
    found: dict[str, tuple[str, str | None]] = {}
    for line in gomod_text.splitlines():
        match = REPLACE.match(line.removeprefix("replace"))
        if match:
            found[match[1]] = (match[2], match[3])
    return found


def module_cache() -> Path:
    if shutil.which("go"):
        out = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                             timeout=60)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    return Path(os.environ.get("GOMODCACHE", Path.home() / "go" / "pkg" / "mod"))


def test_kubernetes_version_matches_the_build_module() -> None:
    assert required(BUILD / "go.mod", "k8s.io/kubernetes") == resources.KUBERNETES_VERSION


def test_etcd_version_matches_the_etcd_build_module() -> None:
    gomod = BUILD / "etcd" / "go.mod"
    assert required(gomod, "go.etcd.io/etcd/server/v3") == resources.ETCD_VERSION
    for module in ("go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/client/v3"):
        assert required(gomod, module) == resources.ETCD_VERSION, module


def test_every_local_replace_points_at_the_matching_staging_version() -> None:
    """Kubernetes v1.X.Y publishes its staging modules as v0.X.Y."""
    staging = "v0." + resources.KUBERNETES_VERSION.split(".", 1)[1]
    ours = replacements((BUILD / "go.mod").read_text())
    assert ours, "cluster/build/go.mod replaces nothing"
    wrong = {m: t for m, t in ours.items() if t != (m, staging)}
    assert not wrong, f"not replaced with {staging}: {wrong}"


def test_every_staging_module_kubernetes_replaces_is_replaced() -> None:
    upstream = (module_cache() / "cache" / "download" / "k8s.io" / "kubernetes" / "@v"
                / f"v{resources.KUBERNETES_VERSION}.mod")
    if not upstream.exists():
        pytest.skip(f"{upstream} missing: run 'make setup' to download the Kubernetes module")
    theirs = {m for m, (target, _) in replacements(upstream.read_text()).items()
              if target.startswith("./staging/")}
    assert len(theirs) > 20, "k8s.io/kubernetes's go.mod should list its staging modules"
    missing = theirs - set(replacements((BUILD / "go.mod").read_text()))
    assert not missing, f"cluster/build/go.mod does not replace {sorted(missing)}"


def test_unpublished_requirements_are_all_replaced() -> None:
    """k8s.io/kubernetes requires staging modules at v0.0.0, which only a replace can resolve."""
    text = (BUILD / "go.mod").read_text()
    placeholders = set(re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s", text, re.MULTILINE))
    assert placeholders <= set(replacements(text))


def test_metrics_server_version_matches_its_build_module() -> None:
    gomod = BUILD / "metrics-server" / "go.mod"
    assert required(gomod, "sigs.k8s.io/metrics-server") == resources.METRICS_SERVER_VERSION


def test_coredns_version_matches_its_build_module() -> None:
    gomod = BUILD.parent / "kind" / "coredns" / "go.mod"
    assert required(gomod, "github.com/coredns/coredns") == resources.COREDNS_VERSION
