"""The kind provider's saved host settings (host.json): put back only when chaos-drill started
the Docker engine, only under known names and values; a `policy:PROGRAM` entry never runs
PROGRAM, a `sysctl:/PATH` entry never writes PATH, an unreadable file restores nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chaos.cluster import dockerd, sysctls
from chaos.cluster.dockerd import ENGINE, ENGINE_STARTED, Engine

from support import zombie


@pytest.fixture
def proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /proc/sys with kernel/panic at "10" (as a node's kubelet sets it)."""
    root = tmp_path / "proc-sys"
    (root / "kernel").mkdir(parents=True)
    (root / "kernel" / "panic").write_text("10\n")
    monkeypatch.setattr(sysctls, "PROC_SYS", root)
    return root


@pytest.fixture
def program(tmp_path: Path) -> Path:
    """An executable that leaves a mark when anything runs it."""
    script = tmp_path / "x"
    script.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    script.chmod(0o755)
    return script


def test_a_policy_entry_naming_a_program_runs_nothing(tmp_path: Path, program: Path,
                                                      proc: Path) -> None:
    said: list[str] = []
    source = tmp_path / "host.json"
    changed = dockerd.restore_host({f"policy:{program}": "ACCEPT", ENGINE: ENGINE_STARTED},
                                   True, source, said.append)
    assert changed == []
    assert not (tmp_path / "ran").exists()
    assert said == [f"not restoring 'policy:{program}' from {source}: not one of iptables, "
                    "ip6tables"]


@pytest.mark.parametrize("policy", ["RETURN", "ACCEPT -j x", 1])
def test_a_policy_that_is_not_accept_or_drop_is_skipped(policy: object) -> None:
    assert dockerd.policy_skip_reason("iptables", policy) == (
        f"{policy!r} is not a FORWARD policy")
    assert dockerd.policy_skip_reason("iptables", "DROP") is None


def test_a_sysctl_entry_naming_a_path_writes_nothing_and_the_rest_is_restored(
        tmp_path: Path, proc: Path) -> None:
    target = tmp_path / "target"
    target.write_text("1\n")
    source = tmp_path / "host.json"
    said: list[str] = []
    changed = dockerd.restore_host({f"sysctl:{target}": "0", "sysctl:kernel/panic": "0",
                                    "docker:thing": "1", ENGINE: ENGINE_STARTED},
                                   True, source, said.append)
    assert target.read_text() == "1\n"
    assert (proc / "kernel" / "panic").read_text() == "0"
    assert changed == ["kernel.panic"]
    assert said == [
        f"not restoring 'docker:thing' from {source}: not a setting chaos-drill changes",
        f"not restoring {str(target)!r} from {source}: not a setting chaos-drill changes",
    ]


def test_settings_are_left_alone_when_chaos_drill_did_not_start_the_engine(
        tmp_path: Path, proc: Path) -> None:
    said: list[str] = []
    changed = dockerd.restore_host({"sysctl:kernel/panic": "0", "lib-modules": "present"},
                                   False, tmp_path / "host.json", said.append)
    assert changed == [] and (proc / "kernel" / "panic").read_text() == "10\n"
    assert said == ["the host's sysctls and FORWARD policies are left as they are: the Docker "
                    "engine was not started by chaos-drill"]


def test_with_another_engine_running_up_saves_only_whether_lib_modules_existed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc: Path) -> None:
    monkeypatch.setattr(dockerd, "engine_up", lambda: True)
    monkeypatch.setattr(dockerd, "create_lib_modules", lambda: None)
    engine = Engine(tmp_path)
    said: list[str] = []
    engine.ensure(said.append)
    assert said == ["using the running Docker engine (not started by chaos-drill)"]
    assert set(json.loads(engine.saved.read_text())) == {"lib-modules"}


def test_down_after_another_engine_leaves_the_sysctls_it_finds(
        tmp_path: Path, proc: Path) -> None:
    """host.json as an older chaos-drill wrote it beside an engine it did not start."""
    engine = Engine(tmp_path)
    engine.saved.write_text(json.dumps({"sysctl:kernel/panic": "0", "lib-modules": "present"}))
    said: list[str] = []
    engine.stop(said.append)
    assert (proc / "kernel" / "panic").read_text() == "10\n"
    assert said == ["the host's sysctls and FORWARD policies are left as they are: the Docker "
                    "engine was not started by chaos-drill"]
    assert not engine.saved.exists()


def test_down_with_a_truncated_host_json_restores_nothing_and_says_so(
        tmp_path: Path, proc: Path) -> None:
    engine = Engine(tmp_path)
    engine.saved.write_text('{"sysctl:kernel/panic": "0", "engine": "start')
    said: list[str] = []
    engine.stop(said.append)
    assert (proc / "kernel" / "panic").read_text() == "10\n"
    (line,) = said
    assert line.startswith(f"{engine.saved} is unreadable (truncated or not JSON: ")
    assert line.endswith("): the host settings it held are left as they are")
    assert not engine.saved.exists()


def test_down_with_a_truncated_dockerd_record_says_so_and_signals_nothing(
        tmp_path: Path, proc: Path) -> None:
    engine = Engine(tmp_path)
    engine.record.write_text('[{"name": "dockerd", "pid": 4')
    said: list[str] = []
    engine.stop(said.append)
    (line,) = said
    assert line.startswith(f"{engine.record} is unreadable (truncated or not JSON: ")
    assert line.endswith("): a dockerd chaos-drill started is left running, if one runs "
                         "('docker info' tells)")


def stored(root: Path, name: str, labels: dict[str, str], volume: str | None) -> None:
    """A container as a stopped engine keeps it: NAME, LABELS, its /var on VOLUME."""
    mounts = {"/lib/modules": {"Name": "", "Type": "bind"}}
    if volume:
        mounts["/var"] = {"Name": volume, "Type": "volume"}
    folder = root / f"id-{name}"
    folder.mkdir(parents=True)
    (folder / "config.v2.json").write_text(json.dumps(
        {"Name": f"/{name}", "Config": {"Labels": labels}, "MountPoints": mounts}))


def test_volumes_a_stored_container_mounts_are_not_leftovers(tmp_path: Path) -> None:
    volumes, containers = tmp_path / "volumes", tmp_path / "containers"
    for name in ("kept", "orphan"):
        (volumes / name).mkdir(parents=True)
    (volumes / "metadata.db").write_text("")
    stored(containers, "smoke-control-plane", {"io.x-k8s.kind.cluster": "smoke"}, "kept")
    (containers / "broken").mkdir()
    (containers / "broken" / "config.v2.json").write_text("{trunc")
    assert dockerd.leftover_volumes(volumes, containers) == ["orphan"]
    assert dockerd.leftover_volumes(tmp_path / "none", containers) == []


def test_stored_containers_are_found_by_label(tmp_path: Path) -> None:
    stored(tmp_path, "chaos-drill-control-plane", {"io.x-k8s.kind.cluster": "chaos-drill"}, "a")
    stored(tmp_path, "chaos-drill-worker", {"io.x-k8s.kind.cluster": "chaos-drill"}, "b")
    stored(tmp_path, "smoke-control-plane", {"io.x-k8s.kind.cluster": "smoke"}, "c")
    stored(tmp_path, "plain", {}, None)
    assert dockerd.stored_with_label("io.x-k8s.kind.cluster", "chaos-drill", tmp_path) == [
        "chaos-drill-control-plane", "chaos-drill-worker"]
    assert dockerd.stored_with_label("io.x-k8s.kind.cluster", "other", tmp_path) == []


def test_a_pid_file_naming_a_dead_process_goes_and_a_live_one_stays(tmp_path: Path) -> None:
    pidfile = tmp_path / "docker.pid"
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=30)
    pidfile.write_text(str(dead.pid))
    dockerd.clear_stale_pidfile(pidfile)
    assert not pidfile.exists()
    pidfile.write_text(str(os.getpid()))
    dockerd.clear_stale_pidfile(pidfile)
    assert pidfile.exists()
    pidfile.write_text("not a pid")
    dockerd.clear_stale_pidfile(pidfile)
    assert pidfile.exists()


def test_a_pid_file_naming_a_zombie_goes(tmp_path: Path) -> None:
    pidfile = tmp_path / "docker.pid"
    with zombie() as pid:
        pidfile.write_text(str(pid))
        dockerd.clear_stale_pidfile(pidfile)
        assert not pidfile.exists()
