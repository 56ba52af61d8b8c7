"""--kind-workers: the size of a kind cluster `up` creates, checked before anything starts, and
the note `up` gives when the cluster it reuses has another size."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from chaos.cluster import kind_config, providers
from chaos.cluster.kind import KindCluster
from chaos.errors import UsageError


def base() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load(kind_config.CONFIG.read_text())
    return loaded


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_workers_set_the_nodes_beside_one_control_plane(workers: int, tmp_path: Path) -> None:
    config = kind_config.cluster_config(base(), local_image=True, registry_hosts=tmp_path,
                                        workers=workers)
    roles = [n["role"] for n in config["nodes"]]
    assert roles == ["control-plane", *["worker"] * workers]
    assert all(n["extraMounts"][0]["hostPath"] == str(tmp_path) for n in config["nodes"]), \
        "every node, the control plane alone too, mounts the registries' folder"


def test_without_workers_the_shipped_three_nodes_stay() -> None:
    config = kind_config.cluster_config(base(), local_image=True)
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]


def test_the_written_config_has_the_workers_asked_for(tmp_path: Path) -> None:
    written = kind_config.write_cluster_config(tmp_path / "c.yaml", workers=0)
    assert [n["role"] for n in yaml.safe_load(written.read_text())["nodes"]] == ["control-plane"]


@pytest.mark.parametrize("workers", [-1, 5])
def test_a_size_out_of_range_is_refused_with_the_range(workers: int) -> None:
    with pytest.raises(UsageError) as refused:
        KindCluster(workers=workers)
    assert str(refused.value) == (f"--kind-workers {workers}: use 0 to 4 (0: one node that "
                                  "runs everything)")


def test_the_command_line_passes_the_workers() -> None:
    parser = argparse.ArgumentParser()
    providers.add_arguments(parser)
    one = providers.from_args(parser.parse_args(["--provider", "kind", "--kind-workers", "0"]))
    assert isinstance(one, KindCluster) and one.workers == 0
    default = providers.from_args(parser.parse_args(["--provider", "kind"]))
    assert isinstance(default, KindCluster) and default.workers is None


def test_a_reused_cluster_of_another_size_is_named() -> None:
    assert kind_config.size_note(3, None) == ""
    assert kind_config.size_note(1, 0) == ""
    assert kind_config.size_note(3, 0) == (
        " with 3 nodes, not the 1 that --kind-workers 0 asks for (run 'chaos-drill cluster down "
        "--provider kind' first to get those)")
    assert kind_config.nodes_text(1) == "1 node"
