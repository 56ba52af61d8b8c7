"""The fault registry: the CRD's enum, the fault modules, the phases and the provider checks all
agree with chaos/drill/fault_types.py, and the tracker follows what the registry says, not the
name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chaos.cluster.kind import KindCluster
from chaos.cluster.kubeconfig import KubeconfigCluster
from chaos.cluster.local import LocalCluster
from chaos.drill import fault_types
from chaos.drill.fault_types import FAULTS, NAMES, Follow, fault_type
from chaos.drill.faults import fault_for
from chaos.drill.loading import crd_schema
from chaos.drill.timeline import Incident
from chaos.errors import FaultError
from chaos.observe.tracker import Tracker

FAULTS_DIR = Path(fault_types.__file__).parent / "faults"


def test_the_crd_enum_is_the_registry() -> None:
    enum = crd_schema()["properties"]["spec"]["properties"]["fault"]["properties"]["type"]["enum"]
    assert tuple(enum) == NAMES, (
        f"manifests/crds/chaosdrill.yaml: set spec.fault.type's enum to [{', '.join(NAMES)}]")


def test_every_fault_module_is_registered_and_builds() -> None:
    modules = {path.stem for path in FAULTS_DIR.glob("*.py")} - {"__init__"}
    assert {fault.factory.partition(":")[0] for fault in FAULTS} == modules
    for name in NAMES:
        built = fault_for(name)
        assert all(callable(getattr(built, m)) for m in ("targets", "act", "restore"))


def test_phases_run_from_injected_to_ready() -> None:
    """Recovery ends at ready; an autoscaled incident goes on, back to where it began, and a
    cut-off pod until back in rotation."""
    ends = {Follow.AUTOSCALE: "scaled_in", Follow.ISOLATION: "endpoint_added"}
    for fault in FAULTS:
        last = ends.get(fault.follow, "ready")
        assert fault.phases[0] == "injected" and fault.phases[-1] == last
        assert "ready" in fault.phases
        assert len(set(fault.phases)) == len(fault.phases)
    assert len(set(NAMES)) == len(NAMES)
    with pytest.raises(ValueError, match="unknown fault type 'pod_kill': use one of pod_delete"):
        fault_type("pod_kill")


def test_a_provider_without_the_capability_is_refused_in_one_line() -> None:
    node_stop, container_kill = fault_type("node_stop"), fault_type("container_kill")
    with pytest.raises(FaultError) as refused:
        node_stop.check_provider(KubeconfigCluster("/nonexistent"))
    assert str(refused.value) == ("node_stop needs node control, which the kubeconfig provider "
                                  "lacks: use node_drain")
    with pytest.raises(FaultError, match="container runtime, which the kubeconfig .*: use "
                                         "liveness_break$"):
        container_kill.check_provider(KubeconfigCluster("/nonexistent"))
    for provider in (LocalCluster(), KindCluster("x")):
        container_kill.check_provider(provider)
    for provider in (LocalCluster(), KindCluster("x")):
        node_stop.check_provider(provider)
    for name in ("pod_delete", "liveness_break", "scale", "node_drain"):
        fault_type(name).check_provider(KubeconfigCluster("/nonexistent"))


def test_describe_lists_each_fault_with_its_phases_and_needs() -> None:
    text = "\n".join(fault_types.describe())
    for fault in FAULTS:
        assert fault.name in text and " > ".join(fault.phases) in text
    assert "needs:  node control" in text and "needs:  the Kubernetes API only" in text


def test_a_new_fault_that_restarts_is_tracked_as_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracker goes by the registry's follow kind, never by the fault's name."""
    disk_fill = replace(fault_type("liveness_break"), name="disk_fill", factory="x:X")
    monkeypatch.setattr(fault_types, "FAULTS", (*FAULTS, disk_fill))
    seen: list[str] = []
    tracker = Tracker(on_phase=lambda inc, phase, mono, api: seen.append(phase))
    pod = {"metadata": {"uid": "a", "name": "web-a"},
           "status": {"conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                             "state": {"running": {}}}]}}
    tracker.pod_event("ADDED", pod, 0.0)
    incident = Incident("r1-i1", 1, "disk_fill", "demo", "web", "web-a", "a")
    incident.mark("injected", 1.0)
    assert incident.follow is Follow.RESTART
    tracker.follow(incident, incident.follow)
    status = pod["status"]
    assert isinstance(status, dict)
    status["containerStatuses"] = [{"name": "web", "ready": True, "restartCount": 1,
                                    "state": {"running": {}}}]
    tracker.pod_event("MODIFIED", pod, 2.0)
    assert seen == ["container_exited", "restarted", "ready"] and incident.recovered
    assert incident.restart_count == 1
