"""The kind provider's command lines. kind needs a Docker engine, which these machines lack, so
only the commands it would run are checked here; nothing in this file runs kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.cluster import kind
from chaos.cluster.kind import KindCluster
from chaos.errors import SetupError


def test_create_uses_the_repo_cluster_config_and_waits() -> None:
    command = kind.create_command("drill")
    assert command == ["kind", "create", "cluster", "--name", "drill", "--config",
                       str(kind.CONFIG), "--wait", "120s"]
    assert kind.CONFIG.is_file()


def test_cluster_config_has_a_control_plane_and_two_workers() -> None:
    config = yaml.safe_load(kind.CONFIG.read_text())
    assert config["kind"] == "Cluster"
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]


def test_create_takes_another_config() -> None:
    command = kind.create_command("x", Path("/tmp/other.yaml"))
    assert command[command.index("--config") + 1] == "/tmp/other.yaml"


def test_delete_names_only_our_cluster() -> None:
    assert kind.delete_command("drill") == ["kind", "delete", "cluster", "--name", "drill"]


def test_load_sends_the_archive_to_the_named_cluster() -> None:
    assert kind.load_command("drill", Path("/cache/web-1.tar")) == [
        "kind", "load", "image-archive", "/cache/web-1.tar", "--name", "drill"]


def test_kill_goes_through_the_node_containers_containerd() -> None:
    assert kind.kill_command("drill-worker", "abc123") == [
        "docker", "exec", "drill-worker", "ctr", "--namespace", "k8s.io", "tasks", "kill",
        "--signal", "SIGKILL", "abc123"]


def test_without_the_kind_cli_the_error_names_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no kind, no docker
    with pytest.raises(SetupError, match=r"^kind not found: install it, or use --provider local"):
        KindCluster("drill").up(lambda _: None)
