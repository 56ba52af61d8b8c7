"""Bad input on the command line: one line naming the problem and the fix, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.cli.parser import main

from support import REPO, error_line

GOOD = REPO / "manifests" / "drills" / "web-pod-kill.yaml"


def one_error_line(capsys: pytest.CaptureFixture[str], args: list[str], *needles: str) -> None:
    """ARGS exit 2 with one line on stderr, its error holding every NEEDLE."""
    assert main(args) == 2
    error_line(capsys.readouterr().err, *needles, alone=True)


def test_unknown_fault(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text(GOOD.read_text().replace("type: pod_delete", "type: pod_kill"))
    one_error_line(capsys, ["run", str(drill)], str(drill), "spec.fault.type", "pod_kill",
                   "pod_delete")


def test_malformed_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_text("spec: [unclosed\n")
    one_error_line(capsys, ["run", str(drill)], str(drill))


def test_missing_drill_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["run", str(tmp_path / "nope.yaml")], "nope.yaml")


def test_report_without_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["report", str(tmp_path)], "no journal.jsonl", "--out")


def test_unknown_provider(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["run", str(GOOD), "--provider", "minikube", "--out",
                            str(tmp_path / "out")], "unknown provider 'minikube'")


def test_faults_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.drill.fault_types import NAMES

    assert main(["faults"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if not line[0].isspace()] == list(NAMES)
    assert "injected > node_not_ready > target_gone" in out and "needs:  node control" in out


def test_min_availability_without_probe_is_refused_before_the_cluster(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drill = tmp_path / "drill.yaml"
    text = GOOD.read_text()
    drill.write_text("\n".join(line for line in text.splitlines() if "probe:" not in line))
    one_error_line(capsys, ["run", str(drill), "--provider", "kubeconfig", "--kubeconfig",
                            str(tmp_path / "none"), "--out", str(tmp_path / "out")],
                   "spec.slo.minAvailability", "spec.probe")
    assert not (tmp_path / "out").exists()


def test_restore_without_a_cluster_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: [")
    one_error_line(capsys, ["restore", "--provider", "kubeconfig", "--kubeconfig", str(broken)],
                   "cannot use kubeconfig", str(broken))


def test_restore_with_an_unreachable_cluster_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    one_error_line(capsys, ["restore", "--provider", "kubeconfig", "--kubeconfig", str(config)],
                   "cannot reach the Kubernetes API server", "cluster status")


@pytest.mark.parametrize(("args", "needles"), [
    (["--web", "70000"], ("--web 70000", "is not a TCP port")),
    (["--web", "TAKEN"], ("pick another --web port",)),
])
def test_bad_web_port_is_refused_before_anything(
        args: list[str], needles: tuple[str, ...], taken_port: int, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(taken_port) if a == "TAKEN" else a for a in args]
    one_error_line(capsys, ["run", str(GOOD), "--out", str(tmp_path / "out"), *args], *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "needles"), [
    (["--target", "web"], ("--target web", "KIND/NAME", "Deployment/web")),
    (["--target", "Pod/web"], ("--target Pod/web", "Deployment")),
    (["--selector", "app"], ("--selector app", "key=value")),
])
def test_bad_watch_target(args: list[str], needles: tuple[str, ...],
                          capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["watch", *args], *needles)


def test_watch_refuses_a_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["watch", "--duration", "0"], "--duration 0", "above 0")


def test_watch_refuses_an_out_folder_holding_a_journal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "journal.jsonl").write_text("{}\n")
    one_error_line(capsys, ["watch", "--out", str(tmp_path)], str(tmp_path), "another --out")
    one_error_line(capsys, ["watch", "--out", str(tmp_path / "journal.jsonl")], "is a file")


def test_operator_install_refuses_kube_system(capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["operator", "install", "--target-namespace", "kube-system"],
                   "kube-system is refused")


def test_operator_install_on_a_kubeconfig_that_does_not_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["operator", "install", "--provider", "kubeconfig", "--kubeconfig",
                            str(tmp_path / "nope")], "nope", "--kubeconfig")


def test_monitor_install_on_a_kubeconfig_that_does_not_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["monitor", "install", "--provider", "kubeconfig", "--kubeconfig",
                            str(tmp_path / "nope")], "nope", "--kubeconfig")


@pytest.mark.parametrize("target", ["web", "Pod/web", "Deployment/", "Deployment/a/b"])
def test_check_refuses_a_target_that_is_not_kind_and_name(
        target: str, capsys: pytest.CaptureFixture[str]) -> None:
    one_error_line(capsys, ["check", "--target", target], f"--target {target!r}",
                   "Deployment/web")


def test_check_with_an_unreachable_cluster_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    one_error_line(capsys, ["check", "--target", "Deployment/web", "--provider", "kubeconfig",
                            "--kubeconfig", str(config)],
                   "cannot reach the Kubernetes API server", "cluster status")
