"""pytest fixtures for users' CI smoke tests: `chaos_kubeconfig` points at the cluster under test
(KUBECONFIG, or the local cluster's), `chaos_api` is an API client for it, and `chaos_drill` runs
a drill there. A test that also uses pytest-kind's `kind_cluster` drills that cluster instead,
with node control (node_stop) through Docker; a kind cluster made without a CNI gets
chaos-drill's when the fixture is set up (ini option `chaos_drill_kind_cni = false` to opt out)."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

KIND_FIXTURE = "kind_cluster"
"""pytest-kind's fixture (or a user's of the same name returning pytest_kind.KindCluster)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("chaos_drill_kind_cni", "give a pytest-kind cluster that has no CNI "
                  "chaos-drill's (ptp + host-local per node, routes between nodes)",
                  type="bool", default=True)


def _say(message: str) -> None:
    print(f"chaos-drill: {message}", flush=True)


def kind_provider(kind_cluster: Any) -> Any:
    """chaos-drill's kind provider for a cluster pytest-kind made: its name, kind binary and
    kubeconfig."""
    from chaos.cluster.kind import KindCluster

    return KindCluster(kind_cluster.name, kind_path=str(Path(kind_cluster.kind_path).resolve()),
                       kubeconfig_path=Path(kind_cluster.kubeconfig_path).resolve())


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any],
                         request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
    """Right after `kind_cluster` is made, before anything deploys to it: the CNI it lacks."""
    cluster = yield
    if fixturedef.argname == KIND_FIXTURE and request.config.getini("chaos_drill_kind_cni"):
        provider = kind_provider(cluster)
        if provider.lacks_cni():
            provider.install_cni(_say)
    return cluster


@pytest.fixture(scope="session")
def chaos_kubeconfig() -> Path:
    """The kubeconfig of the cluster the smoke test drills: $KUBECONFIG or the local cluster's."""
    if os.environ.get("KUBECONFIG"):
        return Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    from chaos.cluster.layout import Layout

    return Layout.default().kubeconfig


@pytest.fixture(scope="session")
def chaos_api(chaos_kubeconfig: Path) -> Any:
    from chaos.cluster import kube

    return kube.api_client(chaos_kubeconfig)


@pytest.fixture
def chaos_drill(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Runs a drill file against the cluster under test and returns its Summary:

        def test_web_heals(chaos_drill):
            assert chaos_drill("drills/web-pod-kill.yaml").passed

    With `kind_cluster` in the test's fixtures, the cluster is pytest-kind's."""
    from chaos.cluster.kubeconfig import KubeconfigCluster
    from chaos.drill.loading import load_drill
    from chaos.results import fresh_out_dir
    from chaos.run.runner import DrillRun, RunOptions

    if KIND_FIXTURE in request.fixturenames:
        provider = kind_provider(request.getfixturevalue(KIND_FIXTURE))
    else:
        provider = KubeconfigCluster(str(request.getfixturevalue("chaos_kubeconfig")))

    def run(path: str | Path, **options: Any) -> Any:
        drill = load_drill(path)
        out = fresh_out_dir(tmp_path / drill.name)  # a second run of it gets NAME-2
        return DrillRun(drill, provider, RunOptions(out_dir=out, **options), print).run()

    return run
