"""The kind cluster the tests of this folder share: brought up once for the session (under the
same lock as the local cluster, which is taken down first, and again whenever a local test ran
meanwhile), reused by every module, taken down at the end of the session or by a test that asks
for it down. Each test asks for the state it needs (`kind_up`, `kind_down`, `kind_web`), so any
order works; in the default order the drills of test_faults_on_kind.py run first, on the cluster
test_kind_cluster.py then reuses and takes down last."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from chaos.cluster import kind, kind_checks, kind_host
from chaos.cluster.kind import KindCluster
from chaos.cluster.local import LocalCluster

from support import (
    PROVOKING_SYSCTLS,
    KindSession,
    fresh_sample_workload,
    host_sysctls,
    leaked,
    sysctls_set,
    watch_leaks,
)


def say(message: str) -> None:
    print(f"[kind] {message}", flush=True)


@pytest.fixture(scope="session")
def kind_session(cluster_lock: None) -> Iterator[KindSession]:
    """The kind cluster of this session, with the host's sysctls set to values a cluster would
    change and every packet leaving by the default route counted; taken down at the end, when
    no packet may have left."""
    if not kind_host.node_image_dir().joinpath("image-id").exists():
        pytest.fail(f"{kind_host.node_image_dir()} missing: run 'make kind' first")
    LocalCluster().down(say)
    if kind.running_here():  # one left up: its kubelet's sysctls are not the host's own
        KindCluster().down(say)
    with sysctls_set(PROVOKING_SYSCTLS):
        session = KindSession(KindCluster(), host_sysctls())
        watch_leaks("-I")
        try:
            yield session
            if kind.running_here():
                session.provider.down(say)
            if kind_checks.local_cluster_up():  # a local test ran in a shuffled order: its
                LocalCluster().down(say)        # `up` saved the values set here, to put back now
            # whatever order the tests ran in, the whole session (test_down_leaves_nothing
            # checks up to its own moment)
            assert leaked() == 0, "packets from the kind nodes or pods left the machine"
        finally:
            watch_leaks("-D")


@pytest.fixture
def kind_up(kind_session: KindSession) -> KindSession:
    """The kind cluster up and healthy, whatever an earlier test did: brought up (again, after a
    test took it down or a local test brought the local cluster up) or reused; the first
    bring-up of the session is timed."""
    if kind_checks.local_cluster_up():
        LocalCluster().down(say)
    was_up = kind.running_here()
    began = time.monotonic()
    kind_session.provider.up(say)
    if not was_up and kind_session.up_seconds is None:
        kind_session.up_seconds = time.monotonic() - began
        say(f"cluster up to all nodes Ready: {kind_session.up_seconds:.1f}s")
    return kind_session


@pytest.fixture
def kind_down(kind_session: KindSession) -> KindSession:
    """No kind cluster, whatever an earlier test left up."""
    if kind.running_here():
        kind_session.provider.down(say)
    return kind_session


@pytest.fixture
def kind_web(kind_up: KindSession) -> Any:
    """The sample workload on kind, applied afresh and settled with fresh pods (see web)."""
    return fresh_sample_workload(kind_up.provider, say, timeout=180)
