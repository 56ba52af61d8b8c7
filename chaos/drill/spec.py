"""The drill document's typed form: frozen dataclasses for a ChaosDrill with every default applied,
and their round trip to and from the ChaosDrill's dict form (chaos.drill.loading validates)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

GROUP, VERSION, PLURAL = "chaosdrill.dev", "v1alpha1", "chaosdrills"
"""The ChaosDrill resource's API group, version and plural, as manifests/crds/ declares them."""
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ChaosDrill"

DEFAULT_LOAD_SECONDS = 30
DEFAULT_LOSS_PERCENT = 30
DEFAULT_LOAD_CONCURRENCY = 2
DEFAULT_LOAD_PATH = "/cgi-bin/work"
"""The sample app's page that burns a few milliseconds of CPU per request."""


@dataclass(frozen=True)
class Target:
    """The workload to attack: kind and name, or (with kind and name None) a label selector."""

    kind: str | None
    name: str | None
    match_labels: Mapping[str, str] = dataclass_field(hash=False)


@dataclass(frozen=True)
class FaultSpec:
    """What to do to each target; fields a fault type does not use are None."""

    type: str
    count: int
    grace_period_seconds: int | None
    replicas: int | None
    container: str | None
    node: str | None
    duration_seconds: int | None = None
    concurrency: int | None = None
    path: str | None = None
    drop_probes: bool = False
    """network_partition, packet_loss: drop the kubelet's liveness probe too (spec.fault.probes)."""
    loss_percent: int | None = None
    """packet_loss: the share of packets dropped, in percent."""


@dataclass(frozen=True)
class ProbeSpec:
    """HTTP availability probe against a Service while the drill runs."""

    service: str
    port: int
    path: str
    rate_per_second: float
    timeout_seconds: float
    origin: str = "auto"
    """spec.probe.from: where the prober runs, host, cluster or auto."""


@dataclass(frozen=True)
class Slo:
    """Thresholds for the verdict; None means not checked."""

    max_recovery_seconds: float | None
    min_availability: float | None
    max_scale_out_seconds: float | None = None
    max_scale_in_seconds: float | None = None


@dataclass(frozen=True)
class Drill:
    """A validated ChaosDrill with every default applied."""

    name: str
    namespace: str
    target: Target
    fault: FaultSpec
    rounds: int
    interval_seconds: float
    seed: int | None
    max_unavailable: int
    min_age_seconds: float
    probe: ProbeSpec | None
    slo: Slo
    recovery_timeout_seconds: float

    def to_object(self) -> dict[str, Any]:
        """The drill as a ChaosDrill object, defaults filled in; drill_from_object reads it."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": _spec_dict(self),
        }


def drill_from_spec(name: str, namespace: str, spec: Mapping[str, Any]) -> Drill:
    """The typed drill from a ChaosDrill's spec, already validated and defaulted."""
    probe = spec.get("probe")
    seed = spec.get("seed")
    return Drill(
        name=name,
        namespace=namespace,
        target=_target(spec["target"]),
        fault=_fault(spec["fault"]),
        rounds=int(spec["rounds"]),
        interval_seconds=float(spec["intervalSeconds"]),
        seed=int(seed) if seed is not None else None,
        max_unavailable=int(spec["maxUnavailable"]),
        min_age_seconds=float(spec["minAgeSeconds"]),
        probe=_probe(probe) if probe is not None else None,
        slo=_slo(spec["slo"]),
        recovery_timeout_seconds=float(spec["recoveryTimeoutSeconds"]),
    )


def _target(target: Mapping[str, Any]) -> Target:
    selector = target.get("labelSelector", {}).get("matchLabels", {})
    return Target(target.get("kind"), target.get("name"), dict(selector))


def _fault(fault: Mapping[str, Any]) -> FaultSpec:
    return FaultSpec(
        type=fault["type"],
        count=int(fault["count"]),
        grace_period_seconds=fault.get("gracePeriodSeconds"),
        replicas=fault.get("replicas"),
        container=fault.get("container"),
        node=fault.get("node"),
        duration_seconds=fault.get("durationSeconds"),
        concurrency=fault.get("concurrency"),
        path=fault.get("path"),
        drop_probes=bool(fault.get("probes", False)),
        loss_percent=fault.get("lossPercent"),
    )


def _probe(probe: Mapping[str, Any]) -> ProbeSpec:
    return ProbeSpec(
        service=probe["service"],
        port=int(probe["port"]),
        path=probe["path"],
        rate_per_second=float(probe["ratePerSecond"]),
        timeout_seconds=float(probe["timeoutSeconds"]),
        origin=str(probe["from"]),
    )


def _slo(slo: Mapping[str, Any]) -> Slo:
    recovery, availability = slo.get("maxRecoverySeconds"), slo.get("minAvailability")
    out, back = slo.get("maxScaleOutSeconds"), slo.get("maxScaleInSeconds")
    return Slo(
        max_recovery_seconds=float(recovery) if recovery is not None else None,
        min_availability=float(availability) if availability is not None else None,
        max_scale_out_seconds=float(out) if out is not None else None,
        max_scale_in_seconds=float(back) if back is not None else None,
    )


def _spec_dict(drill: Drill) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "target": _target_dict(drill.target),
        "fault": _without_none(
            type=drill.fault.type,
            count=drill.fault.count,
            gracePeriodSeconds=drill.fault.grace_period_seconds,
            replicas=drill.fault.replicas,
            container=drill.fault.container,
            node=drill.fault.node,
            durationSeconds=drill.fault.duration_seconds,
            concurrency=drill.fault.concurrency,
            path=drill.fault.path,
            probes=drill.fault.drop_probes or None,
            lossPercent=drill.fault.loss_percent,
        ),
        "rounds": drill.rounds,
        "intervalSeconds": drill.interval_seconds,
        "maxUnavailable": drill.max_unavailable,
        "minAgeSeconds": drill.min_age_seconds,
        "recoveryTimeoutSeconds": drill.recovery_timeout_seconds,
        "slo": _without_none(
            maxRecoverySeconds=drill.slo.max_recovery_seconds,
            minAvailability=drill.slo.min_availability,
            maxScaleOutSeconds=drill.slo.max_scale_out_seconds,
            maxScaleInSeconds=drill.slo.max_scale_in_seconds,
        ),
    }
    if drill.seed is not None:
        spec["seed"] = drill.seed
    if drill.probe is not None:
        spec["probe"] = _probe_dict(drill.probe)
    return spec


def _target_dict(target: Target) -> dict[str, Any]:
    if target.name is not None:
        return {"kind": target.kind, "name": target.name}
    return {"labelSelector": {"matchLabels": dict(target.match_labels)}}


def _probe_dict(probe: ProbeSpec) -> dict[str, Any]:
    return {
        "service": probe.service,
        "port": probe.port,
        "path": probe.path,
        "ratePerSecond": probe.rate_per_second,
        "timeoutSeconds": probe.timeout_seconds,
        "from": probe.origin,
    }


def _without_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
