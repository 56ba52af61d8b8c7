"""The autoscaling loop's settings: chosen by default, others from the environment, bad ones
refused in one line before the cluster starts."""

from __future__ import annotations

import pytest

from chaos.cluster import tuning
from chaos.errors import SetupError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tuning.HPA_SYNC_ENV, raising=False)
    monkeypatch.delenv(tuning.RESOLUTION_ENV, raising=False)


def test_the_chosen_settings_by_default() -> None:
    assert tuning.current() == tuning.CHOSEN == tuning.Tuning(5, 10)


def test_the_environment_sets_others(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in tuning.environment(tuning.KUBERNETES_DEFAULTS).items():
        monkeypatch.setenv(name, value)
    assert tuning.current() == tuning.KUBERNETES_DEFAULTS


def test_seconds_without_a_unit_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tuning.HPA_SYNC_ENV, "30")
    assert tuning.current().hpa_sync_seconds == 30


@pytest.mark.parametrize("value", ["fast", "1m", "0s", "-5s", "1.5s", "5 s s"])
def test_a_bad_duration_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                        value: str) -> None:
    monkeypatch.setenv(tuning.HPA_SYNC_ENV, value)
    with pytest.raises(SetupError) as error:
        tuning.current()
    message = str(error.value)
    assert tuning.HPA_SYNC_ENV in message and "whole seconds" in message
    assert "\n" not in message


def test_a_resolution_below_the_floor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tuning.RESOLUTION_ENV, "5s")
    with pytest.raises(SetupError, match="10s or more"):
        tuning.current()

