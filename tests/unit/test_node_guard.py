"""Which nodes node faults may touch (chaos.drill.node_guard) and the operator's settings."""

from __future__ import annotations

import pytest

from chaos.drill.fault_types import FAULTS
from chaos.drill.node_guard import (
    CONTROL_PLANE_LABEL,
    DRILLABLE_LABEL,
    NodePolicy,
    cap_refusal,
    refusal,
)
from chaos.errors import UsageError
from chaos.operator.settings import MAX_CORDON_ENV, Settings

OPERATOR = NodePolicy(require_drillable=True, max_cordon_seconds=300)


def test_the_operator_takes_only_labelled_workers() -> None:
    assert refusal("node-1", {DRILLABLE_LABEL: "true"}, OPERATOR) is None
    line = refusal("node-1", {}, OPERATOR)
    assert line == (f"node node-1 is not labelled {DRILLABLE_LABEL}=true: an administrator opts "
                    f"it in with 'kubectl label node node-1 {DRILLABLE_LABEL}=true'")
    assert refusal("node-1", {DRILLABLE_LABEL: "yes"}, OPERATOR) is not None


@pytest.mark.parametrize("policy", [OPERATOR, NodePolicy()])
def test_the_control_plane_is_refused_even_when_labelled(policy: NodePolicy) -> None:
    line = refusal("cp", {DRILLABLE_LABEL: "true", CONTROL_PLANE_LABEL: ""}, policy)
    assert line is not None and "control-plane" in line and "\n" not in line


def test_the_cli_default_needs_no_label() -> None:
    assert refusal("node-1", {}, NodePolicy()) is None


def test_a_recovery_timeout_over_the_cap_is_refused() -> None:
    assert cap_refusal(300, OPERATOR) is None
    assert cap_refusal(301, OPERATOR) == (
        "spec.recoveryTimeoutSeconds 301 would keep a node cordoned up to 301 s, over the "
        "operator's cap of 300 s: set it to 300 or less")
    assert cap_refusal(10_000, NodePolicy()) is None


def test_every_node_fault_declares_what_it_does_to_the_node() -> None:
    assert {f.name: f.node_action for f in FAULTS if f.node_action} == {
        "node_drain": "cordon", "node_stop": "stop"}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().node_policy() == OPERATOR
    monkeypatch.setenv(MAX_CORDON_ENV, "5")
    assert Settings.from_env().max_cordon_seconds == 5
    monkeypatch.setenv(MAX_CORDON_ENV, "soon")
    with pytest.raises(UsageError, match=f"{MAX_CORDON_ENV}='soon' is not a number"):
        Settings.from_env()
