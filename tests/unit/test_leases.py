"""The Leases' pure parts: their names (valid DNS labels, distinct), when one has expired by the
API server's clock, what one look and a later one say about the run behind it, and who holds it."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from chaos.cluster import processes
from chaos.drill import lease_keeper, leases

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def lease(renewed: datetime | None, seconds: int | None = 20, version: str = "1",
          annotations: dict[str, str] | None = None, holder: str = "run1") -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name="x", namespace="demo", resource_version=version,
                                     annotations=annotations),
        spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=seconds,
                                renew_time=renewed, acquire_time=renewed))


def test_names_are_the_run_and_the_target() -> None:
    assert leases.run_lease_name("0123abcd4567") == "chaos-drill-run-0123abcd4567"
    assert leases.target_lease_name("Deployment", "web") == "chaos-drill-target-deployment-web"
    assert leases.target_lease_name("StatefulSet", "db") == "chaos-drill-target-statefulset-db"


@pytest.mark.parametrize("kind, name", [
    ("Deployment", "a" * 253), ("Deployment", "web.v2"), ("Pods", "app=web,tier=front"),
    ("ReplicaSet", "x-" * 40 + "y"), ("Deployment", "...")])
def test_any_target_gets_a_valid_dns_label(kind: str, name: str) -> None:
    made = leases.target_lease_name(kind, name)
    assert len(made) <= 63 and DNS_LABEL.match(made), made
    assert made.startswith(leases.TARGET_PREFIX)


def test_names_that_had_to_change_never_collide() -> None:
    long_a, long_b = "a" * 80 + "1", "a" * 80 + "2"
    names = {leases.target_lease_name("Deployment", n)
             for n in ("web.v2", "web-v2", long_a, long_b)}
    assert len(names) == 4
    assert leases.target_lease_name("Deployment", "web-v2") == (
        "chaos-drill-target-deployment-web-v2")
    assert leases.target_lease_name("Deployment", long_a) == leases.target_lease_name(
        "Deployment", long_a), "the same target always gets the same name"


def test_a_lease_expires_its_duration_after_its_last_renewal() -> None:
    spec = lease(NOW).spec
    assert leases.expires_at(spec) == NOW + timedelta(seconds=20)
    assert not leases.expired(spec, NOW + timedelta(seconds=19.9))
    assert leases.expired(spec, NOW + timedelta(seconds=20))
    assert leases.expired(lease(None).spec, NOW), "never renewed: holds nothing"
    assert leases.expired(lease(NOW, seconds=None).spec, NOW), "no duration: holds nothing"


def test_only_expired_leases_are_swept() -> None:
    fresh, old, unset = lease(NOW - timedelta(seconds=5)), lease(NOW - timedelta(seconds=21)), \
        lease(None)
    assert leases.expired_ones([fresh, old, unset], NOW) == [old, unset]


def test_one_look_decides_only_gone_or_expired() -> None:
    assert leases.decide(None, None, NOW) == leases.Judgement(False, "its Lease is gone")
    old = lease(NOW - timedelta(seconds=25))
    verdict = leases.decide(None, old, NOW)
    assert verdict is not None and not verdict.alive and verdict.why == (
        "its Lease expired 5s ago")
    assert leases.decide(None, lease(NOW - timedelta(seconds=3)), NOW) is None


def test_a_renewal_seen_while_watching_means_alive() -> None:
    first = lease(NOW - timedelta(seconds=3), version="7")
    assert leases.decide(first, first, NOW + timedelta(seconds=1)) is None
    renewed = lease(NOW + timedelta(seconds=2), version="8")
    verdict = leases.decide(first, renewed, NOW + timedelta(seconds=2))
    assert verdict is not None and verdict.alive and verdict.lease is renewed
    verdict = leases.decide(first, first, NOW + timedelta(seconds=17))
    assert verdict is not None and not verdict.alive, "never renewed: dead once expired"


def test_time_is_the_api_servers_from_its_date_header() -> None:
    assert leases.server_date({"Date": "Thu, 01 Jan 2026 12:00:00 GMT"}) == NOW
    assert leases.server_date({}) is None and leases.server_date(None) is None
    assert leases.server_date({"Date": "yesterday"}) is None
    clock = leases.ServerClock()
    ahead = datetime.now(UTC) + timedelta(minutes=5)
    clock.learn({"Date": ahead.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    assert abs((clock.now() - ahead).total_seconds()) < 2.0


def test_micro_time_always_has_six_decimals() -> None:
    assert leases.micro_time(NOW) == "2026-01-01T12:00:00.000000Z"
    assert leases.micro_time(NOW + timedelta(microseconds=5)) == "2026-01-01T12:00:00.000005Z"


def test_the_holder_is_named_from_the_lease() -> None:
    holder = leases.Holder("run1", "demo/e2e", "laptop", 42, "2026-01-01T12:00:00+00:00")
    body = lease_keeper.lease_body("chaos-drill-target-deployment-web", "demo", holder, NOW)
    assert body["spec"]["holderIdentity"] == "run1"
    assert body["spec"]["leaseDurationSeconds"] == leases.LEASE_SECONDS
    assert body["spec"]["renewTime"] == "2026-01-01T12:00:00.000000Z"
    assert "resourceVersion" not in body["metadata"]
    found = leases.Holder.of(lease(NOW, annotations=body["metadata"]["annotations"]))
    assert found == holder
    assert found.describe() == ("run run1 (drill demo/e2e, pid 42 on laptop, "
                                "since 2026-01-01T12:00:00+00:00)")
    garbled = leases.Holder.of(lease(NOW, annotations={leases.HOLDER_ANNOTATION: "{"},
                                     holder="other"))
    assert garbled.run == "other"
    taken = lease_keeper.lease_body("x", "demo", holder, NOW, "99", transitions=3)
    assert (taken["metadata"]["resourceVersion"], taken["spec"]["leaseTransitions"]) == ("99", 3)
    assert json.loads(taken["metadata"]["annotations"][leases.HOLDER_ANNOTATION])["pid"] == 42


def test_a_holder_here_whose_process_ended_is_gone_and_no_other_is() -> None:
    mine = leases.Holder.this_process("run1", "demo/e2e")
    assert mine.space and mine.start > 0
    assert not mine.gone_from_here(), "this very process runs"
    child = subprocess.Popen(["sleep", "30"])
    theirs = leases.Holder("run2", "demo/e2e", mine.host, child.pid, mine.since, mine.space,
                           processes.start_time_of(child.pid) or 0)
    assert not theirs.gone_from_here()
    child.kill()
    child.wait(timeout=10)
    assert theirs.gone_from_here(), "its process ended"
    reused = replace(mine, start=mine.start + 1)
    assert reused.gone_from_here(), "another process now has its pid"
    assert not replace(reused, space="another-boot/pid:[1]").gone_from_here(), \
        "a pid of another machine or PID namespace says nothing here"
    assert not replace(reused, space="", start=0).gone_from_here(), "an older Lease: watched"


def test_the_holder_annotation_keeps_the_pid_space_and_older_ones_still_read() -> None:
    mine = leases.Holder.this_process("run1", "demo/e2e")
    text = json.dumps(asdict(mine))
    assert leases.Holder.of(lease(NOW, annotations={leases.HOLDER_ANNOTATION: text})) == mine
    older = {k: v for k, v in asdict(mine).items() if k not in ("space", "start")}
    read = leases.Holder.of(lease(NOW, annotations={
        leases.HOLDER_ANNOTATION: json.dumps(older)}))
    assert (read.space, read.start) == ("", 0) and not read.gone_from_here()
