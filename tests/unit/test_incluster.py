"""The in-cluster provider's kubeconfig: the API server through the kubernetes Service, the pod's
CA and token file; and when a process counts as running in a pod."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cluster import incluster
from chaos.drill.fault_types import fault_type
from chaos.errors import FaultError


def test_kubeconfig_names_the_service_ca_and_token_file(tmp_path: Path) -> None:
    doc = incluster.kubeconfig_document("10.96.0.1", "443", tmp_path)
    assert doc["clusters"] == [{"name": "in-cluster", "cluster": {
        "server": "https://10.96.0.1:443", "certificate-authority": str(tmp_path / "ca.crt")}}]
    assert doc["users"] == [{"name": "operator", "user": {"tokenFile": str(tmp_path / "token")}}]
    assert incluster.kubeconfig_document("fd00::1", "443", tmp_path)["clusters"][0][  # type: ignore[index]
        "cluster"]["server"] == "https://[fd00::1]:443"


def test_running_in_cluster_needs_the_token_and_no_kubeconfig(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert not incluster.running_in_cluster(tmp_path)
    (tmp_path / "token").write_text("t")
    assert incluster.running_in_cluster(tmp_path)
    monkeypatch.setenv("KUBECONFIG", "/x")
    assert not incluster.running_in_cluster(tmp_path)


@pytest.mark.parametrize("fault", ["container_kill", "node_stop"])
def test_runtime_faults_are_refused_in_cluster_in_one_line(fault: str) -> None:
    with pytest.raises(FaultError) as caught:
        fault_type(fault).check_provider(incluster.InClusterProvider())
    assert "in-cluster" in str(caught.value) and "\n" not in str(caught.value)
