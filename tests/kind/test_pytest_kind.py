"""The example CI workflow, as users run it: every `run` of examples/kind-smoke/github-workflow.yml
but the two that need the internet runs as written, in a fresh folder with the example and the
built wheel, in a fresh virtualenv. So pytest-kind makes a kind cluster from our node image (the
CNI given by chaos-drill's plugin) and the example drills it; then the wheel's CLI drills that
same cluster (kind's image loading, the kubeconfig provider, the operator to a Passed ChaosDrill),
and `cluster down` of both providers leaves it running. The host is prepared as `cluster up
--provider kind` does (dockerd, the node image, our network and its egress rule) and put back
after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cluster import dockerd, kind
from chaos.cluster.kind import KindCluster
from chaos.cluster.kind_host import NETWORK, node_image_dir
from chaos.cluster.local import LocalCluster
from chaos.images.node import NODE_IMAGE
from chaos.resources import cache_dir

from support import KUBECTL, REPO, leaked, watch_leaks

pytestmark = [pytest.mark.e2e, pytest.mark.kind, pytest.mark.timeout(1200)]

EXAMPLE = REPO / "examples" / "kind-smoke"
WORKFLOW = EXAMPLE / "github-workflow.yml"
WHEELHOUSE = cache_dir() / "wheelhouse"
ELSEWHERE = {
    "Install kind and busybox (the sample app's image is made from it)":
        "kind is make kind's build, busybox-static a package make setup installs",
    "Build chaos-drill's wheel": "the wheel is the session's build of this checkout",
}
"""The workflow's steps that need the internet, and where this machine has what they make."""
STEP_TIMEOUT = 720


def say(message: str) -> None:
    print(f"[kind-smoke] {message}", flush=True)


def workflow() -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The smoke job's env and its steps that run a command."""
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["smoke"]
    return dict(job.get("env", {})), [step for step in job["steps"] if "run" in step]


CLUSTER = workflow()[0]["CLUSTER"]


@pytest.fixture
def kind_host(cluster_lock: None) -> Iterator[KindCluster]:
    """The host ready for a kind cluster that kind makes (none yet); everything removed after,
    the cluster too if a failed step left it."""
    if not node_image_dir().joinpath("image-id").exists():
        pytest.fail(f"{node_image_dir()} missing: run 'make kind' first")
    LocalCluster().down(say)
    if kind.running_here():
        KindCluster().down(say)
    provider = KindCluster(CLUSTER)
    provider.state.mkdir(parents=True, exist_ok=True)
    (provider.state / "cluster").write_text(CLUSTER)  # the local provider refuses meanwhile
    watch_leaks("-I")
    try:
        provider.prepare_host(say)
        delete_smoke(provider)  # a run killed before its end leaves one
        yield provider
    finally:
        watch_leaks("-D")
        delete_smoke(provider)
        provider.down(say)


def delete_smoke(provider: KindCluster) -> None:
    """Deletes the workflow's cluster (kind made it, so `cluster down` leaves it), if there."""
    if dockerd.engine_up() and CLUSTER in provider._kind("get", "clusters").split():
        provider._kind("delete", "cluster", "--name", CLUSTER)


@pytest.fixture
def checkout(dist: tuple[Path, Path], tmp_path: Path) -> Path:
    """A fresh folder as the workflow's checkout and wheel build leave it: the example and
    dist/ with the wheel."""
    folder = tmp_path / "checkout"
    shutil.copytree(EXAMPLE, folder / "examples" / "kind-smoke",
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (folder / "dist").mkdir()
    shutil.copy(dist[1], folder / "dist")
    return folder


def user_env(folder: Path, job_env: dict[str, str]) -> dict[str, str]:
    """What the workflow's shell has, as this machine has it: a fresh virtualenv first on PATH
    (setup-python's), kind and kubectl (the runner's), pip offline from the wheelhouse, our
    node image and kind network instead of kind's own."""
    if not any(WHEELHOUSE.glob("pytest_kind-*.whl")):
        pytest.fail(f"no pytest-kind wheel in {WHEELHOUSE}: run 'make wheelhouse'")
    venv, tools = folder.parent / "venv", folder.parent / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    tools.mkdir()
    (tools / "kind").symlink_to(Path(kind.kind_binary()).resolve())
    (tools / "kubectl").symlink_to(KUBECTL)
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "KUBECONFIG")}
    return {**env, **job_env, "PATH": f"{venv / 'bin'}:{tools}:/usr/bin:/bin:/usr/sbin:/sbin",
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "KUBECONFIG": str(folder / ".kube" / "config"),
            "KIND_EXPERIMENTAL_DOCKER_NETWORK": NETWORK,
            "PYTEST_ADDOPTS": f"--kind-image {NODE_IMAGE} --kind-kubectl-bin {KUBECTL} "
                              "-p no:cacheprovider -rP"}


def run_steps(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """Runs the workflow's steps as GitHub's bash does (-eo pipefail), in order, skipping the
    rest after a failure but those marked `if: always()`; each step's output by name."""
    outputs, failed = {}, ""
    for step in workflow()[1]:
        if step["name"] in ELSEWHERE or (failed and step.get("if") != "always()"):
            continue
        began = time.monotonic()
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                                 step["run"]], cwd=folder, env=env, capture_output=True,
                                text=True, timeout=STEP_TIMEOUT)
        outputs[step["name"]] = result.stdout + result.stderr
        say(f"{step['name']}: exit {result.returncode} in {time.monotonic() - began:.1f}s\n"
            + outputs[step["name"]][-2500:])
        if result.returncode != 0 and not failed:
            failed = f"{step['name']!r} exited {result.returncode}: " \
                     + outputs[step["name"]][-2000:]
    assert not failed, failed
    return outputs


def test_the_example_workflow_runs_here_as_written(checkout: Path,
                                                   kind_host: KindCluster) -> None:
    names = [step["name"] for step in workflow()[1]]
    assert set(ELSEWHERE) <= set(names), "the steps left out are still in the workflow"
    env = user_env(checkout, workflow()[0])
    outputs = run_steps(checkout, env)
    where = subprocess.run(["python", "-c", "import chaos; print(chaos.__file__)"], env=env,
                           cwd=checkout, capture_output=True, text=True, timeout=60).stdout
    assert where.startswith(str(checkout.parent / "venv")), "the wheel ran, not the checkout"

    smoke = next(out for name, out in outputs.items() if "(pytest-kind)" in name)
    drills = next(out for name, out in outputs.items() if "command line" in name)
    assert "1 passed" in smoke
    assert "from pod demo/chaosdrill-prober-" in smoke, "the example probes from the cluster"
    assert f"chaos-drill: CNI on {CLUSTER}-control-plane: pods from 10.250." in smoke, \
        "the plugin gives the new cluster its CNI"
    assert (checkout / ".pytest-kind" / CLUSTER).is_dir(), "pytest-kind ran in the user's folder"

    summary = json.loads((checkout / "results" / "summary.json").read_text())
    assert summary["passed"] is True and len(summary["incidents"]) == 2
    assert "sample workloads Ready" in drills and "operator installed and Ready" in drills
    assert "condition met" in drills, "the operator's ChaosDrill ended Passed"
    assert "does not own its cluster: nothing stopped" in drills
    assert f"kind cluster {CLUSTER} was not made by chaos-drill: left running" in drills
    nodes = [line.split() for line in drills.splitlines() if line.startswith(f"{CLUSTER}-")]
    assert len(nodes) == 3 and all(node[1] == "Ready" for node in nodes), \
        "every node still Ready after both downs"

    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True,
                              timeout=60, env=env).stdout.split()
    assert CLUSTER not in clusters, "the workflow's last step deletes the cluster"
    assert not dockerd.run("ps", "-aq", "--filter", f"label={kind.CLUSTER_LABEL}={CLUSTER}",
                           timeout=60).strip()
    assert leaked() == 0, "packets from the kind nodes or pods left the machine"
