"""Shared test fixtures. Those for the real local cluster: one cluster per session, reused when
healthy, taken down at the end unless CHAOS_DRILL_KEEP_CLUSTER=1."""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import host_lock, kube, workloads
from chaos.cluster.local import LocalCluster

from support import build_dist, fresh_sample_workload, kind_down, wait_addons_ready


def _say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


LOCK = Path("/tmp/chaos-drill-cluster.lock")
_HELD: list[bool] = []  # True while this session holds the lock


@pytest.fixture(scope="session")
def cluster_lock() -> Iterator[None]:
    """This machine's clusters, held under a file lock so test and benchmark runs take turns;
    within a session the local and kind clusters take turns through `cluster` and `kind`."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("e2e tests need root for the local cluster, and CI runs as root")
        pytest.skip("e2e tests need root for the local cluster (run 'sudo make test')")
    if _HELD:  # taken in pytest_runtestloop, so waiting for it is not part of any test's time
        yield
        return
    # A test that asks for the cluster only at run time (request.getfixturevalue) was not seen
    # by pytest_runtestloop: take the lock now rather than share another run's cluster.
    with _holding_lock():
        yield


@contextlib.contextmanager
def _holding_lock() -> Iterator[None]:
    """Holds the lock, waiting up to CHAOS_DRILL_LOCK_WAIT seconds (default 3600) for it."""
    wait = float(os.environ.get("CHAOS_DRILL_LOCK_WAIT", "3600"))

    def waiting(holder: str) -> None:
        print(f"[cluster] waiting for {LOCK} (held by {holder})", flush=True)

    def overdue(holder: str) -> Exception:
        return pytest.UsageError(f"{LOCK} still held after {wait:.0f} s by {holder}: wait for "
                                 "it or raise CHAOS_DRILL_LOCK_WAIT")

    with host_lock.taken(LOCK, wait, waiting, overdue):
        _HELD.append(True)
        try:
            yield
        finally:
            _HELD.pop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    """Runs needing a cluster take turns on this machine: the lock is taken before the first
    test, so the wait counts against no test's timeout."""
    needs = any("cluster_lock" in getattr(item, "fixturenames", ()) for item in session.items)
    if not needs or os.geteuid() != 0 or session.config.option.collectonly:
        yield
        return
    with _holding_lock():
        yield


@pytest.fixture(scope="session")
def local_cluster(cluster_lock: None) -> Iterator[LocalCluster]:
    """The one local cluster, reused by the session, taken down at its end."""
    kind_down(_say)
    cluster = LocalCluster()
    cluster.up(_say)
    with kube.api_client(cluster.kubeconfig()) as api:
        wait_addons_ready(api)
    yield cluster
    if os.environ.get("CHAOS_DRILL_KEEP_CLUSTER") != "1":
        cluster.down(_say)


@pytest.fixture
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    """The local cluster, brought back up if a test (or the kind tests) took it down, its
    add-ons ready."""
    kind_down(_say)
    local_cluster.up(_say)
    with kube.api_client(local_cluster.kubeconfig()) as api:
        wait_addons_ready(api)
    return local_cluster


@pytest.fixture
def api(cluster: LocalCluster) -> Any:
    return kube.api_client(cluster.kubeconfig())


@pytest.fixture
def web(cluster: LocalCluster) -> Any:
    """The sample workload, applied afresh (web 3 replicas, api 2) and settled: every pod Ready,
    none terminating, and none restarted. Pods an earlier test left restarting (a crash loop's
    back-off, 10 s doubling to 5 min, would carry over) or not Ready are replaced; when none did,
    that costs one list call per Deployment."""
    return fresh_sample_workload(cluster, _say, timeout=120)


@pytest.fixture
def operator_env(web: Any, cluster: LocalCluster, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CRD installed and Established; the operator (KopfRunner) pointed at the cluster and
    tmp_path."""
    from chaos.operator.install import CRDS, wait_established

    crd = list(workloads.documents(CRDS))
    workloads.apply(web, crd, _say)
    wait_established(web, crd[0]["metadata"]["name"], 30)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig()))
    monkeypatch.setenv("CHAOS_DRILL_OPERATOR_OUT", str(tmp_path))
    monkeypatch.setenv("CHAOS_DRILL_METRICS_LINGER_SECONDS", "0")  # none left for the next test
    return web


@pytest.fixture
def installed(web: Any, cluster: LocalCluster) -> Iterator[Any]:
    """The operator installed in the cluster (opted in: demo), removed afterwards with
    everything it made."""
    from chaos.operator import install as operator_install

    operator_install.install(cluster, _say, ["demo"], timeout=120)
    try:
        yield web
    finally:
        operator_install.uninstall(cluster, _say, timeout=120)


@pytest.fixture
def autoscaled(web: Any) -> Iterator[Any]:
    """web with its HPA; removed again afterwards, so other tests set replicas by hand."""
    workloads.set_autoscaling(web, True, _say)
    yield web
    workloads.set_autoscaling(web, False, _say)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """This checkout's sdist and wheel, built once per session."""
    return build_dist(tmp_path_factory.mktemp("dist"))


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that collects nothing is a broken run, never a green one."""
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests collected: check the paths and -k/-m expressions")


SHUFFLE = "CHAOS_DRILL_SHUFFLE"
"""A seed: the run takes its modules in a random order, and each module's tests too, to show
that no test leans on what another left behind."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seed = os.environ.get(SHUFFLE)
    if not seed:
        return
    rng = random.Random(seed)
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    order = list(modules)
    rng.shuffle(order)
    items[:] = [item for module in order for item in rng.sample(modules[module],
                                                                len(modules[module]))]


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = os.environ.get(SHUFFLE)
    return f"{SHUFFLE}={seed}: modules and the tests in each run in a shuffled order" if seed \
        else None
