"""pytest fixtures for users' CI smoke tests: `chaos_kubeconfig` points at the cluster under test
(KUBECONFIG, or the local cluster's) and `chaos_api` is an API client for it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def chaos_kubeconfig() -> Path:
    """The kubeconfig of the cluster the smoke test drills: $KUBECONFIG or the local cluster's."""
    if os.environ.get("KUBECONFIG"):
        return Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    from chaos.cluster.layout import Layout

    return Layout.default().kubeconfig


@pytest.fixture(scope="session")
def chaos_api(chaos_kubeconfig: Path) -> Any:
    from chaos import kube

    return kube.api_client(chaos_kubeconfig)


@pytest.fixture
def chaos_drill(chaos_kubeconfig: Path, tmp_path: Path) -> Any:
    """Runs a drill file against the cluster under test and returns its Summary:

        def test_web_heals(chaos_drill):
            assert chaos_drill("drills/web-pod-kill.yaml").passed
    """
    from chaos.cluster.kubeconfig import KubeconfigCluster
    from chaos.results import fresh_out_dir
    from chaos.runner import DrillRun, RunOptions
    from chaos.spec import load_drill

    def run(path: str | Path, **options: Any) -> Any:
        drill = load_drill(path)
        out = fresh_out_dir(tmp_path / drill.name)  # a second run of it gets NAME-2
        provider = KubeconfigCluster(str(chaos_kubeconfig))
        return DrillRun(drill, provider, RunOptions(out_dir=out, **options), print).run()

    return run
