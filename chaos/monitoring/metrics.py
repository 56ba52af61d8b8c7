"""Every Prometheus metric chaos-drill exports: the families, their labels and buckets, registered
once per explicit `CollectorRegistry` (so tests and drills stay isolated); drill_metrics updates
them and metrics_server serves them.

Labels are bounded (namespace, workload, fault, result, phase); pod names and UIDs go to the
journal.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from chaos import __version__

# Every counter and histogram child would also export a `_created` series: no dashboard or rule
# reads them, Prometheus 2 stores them as gauges, and they cost scrape time. The switch is
# process-wide in prometheus_client.
disable_created_metrics()  # type: ignore[no-untyped-call]

INCIDENT_RESULTS = ("recovered", "unrecovered")
PROBE_RESULTS = ("ok", "error")

# Recoveries take from under a second (container restart) to minutes (node loss).
RECOVERY_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)
# A phase can be a few milliseconds (scheduling) or as long as a whole recovery.
PHASE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
# Autoscaling waits on 10 s metrics and a 5 s controller sync: seconds to a few minutes.
SCALE_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)

_WORKLOAD = ("namespace", "workload")
_FAULT = (*_WORKLOAD, "fault")


@dataclass(frozen=True)
class _Families:
    """The metric families, registered once per registry and shared by its DrillMetrics."""

    faults_injected: Counter
    incidents: Counter
    recovery_seconds: Histogram
    phase_seconds: Histogram
    traffic_seconds: Histogram
    ready_replicas: Gauge
    desired_replicas: Gauge
    scale_out_seconds: Histogram
    scale_in_seconds: Histogram
    hpa_desired_replicas: Gauge
    hpa_current_replicas: Gauge
    container_restarts: Counter
    probe_requests: Counter
    availability: Gauge
    drill_running: Gauge
    last_fault_timestamp: Gauge
    slo_max_recovery: Gauge
    slo_min_availability: Gauge
    slo_max_scale_out: Gauge
    slo_max_scale_in: Gauge
    build_info: Gauge


def _register(registry: CollectorRegistry) -> _Families:
    r = registry
    families = _Families(
        faults_injected=Counter(
            "chaosdrill_faults_injected", "Faults injected.", _FAULT, registry=r
        ),
        incidents=Counter(
            "chaosdrill_incidents",
            "Incidents closed, by whether the workload recovered.",
            (*_FAULT, "result"),
            registry=r,
        ),
        recovery_seconds=Histogram(
            "chaosdrill_recovery_seconds",
            "Seconds from fault injection until the workload was Ready again.",
            _FAULT,
            buckets=RECOVERY_BUCKETS,
            registry=r,
        ),
        phase_seconds=Histogram(
            "chaosdrill_phase_seconds",
            "Seconds spent in each phase of an incident's timeline.",
            (*_FAULT, "phase"),
            buckets=PHASE_BUCKETS,
            registry=r,
        ),
        traffic_seconds=Histogram(
            "chaosdrill_traffic_seconds",
            "Seconds from a fault's injection until the probed Service stopped sending its pod "
            "traffic (phase endpoint_removed), and until it sent traffic to its replacement, or "
            "to it again (endpoint_added).",
            (*_FAULT, "phase"),
            buckets=PHASE_BUCKETS,
            registry=r,
        ),
        ready_replicas=Gauge(
            "chaosdrill_workload_ready_replicas", "Ready replicas.", _WORKLOAD, registry=r
        ),
        desired_replicas=Gauge(
            "chaosdrill_workload_desired_replicas", "Desired replicas.", _WORKLOAD, registry=r
        ),
        scale_out_seconds=Histogram(
            "chaosdrill_scale_out_seconds",
            "Seconds from a load's start until every pod the autoscaler added was Ready.",
            _FAULT,
            buckets=SCALE_BUCKETS,
            registry=r,
        ),
        scale_in_seconds=Histogram(
            "chaosdrill_scale_in_seconds",
            "Seconds from a load's end until the autoscaler was back to where it began.",
            _FAULT,
            buckets=SCALE_BUCKETS,
            registry=r,
        ),
        hpa_desired_replicas=Gauge(
            "chaosdrill_hpa_desired_replicas",
            "The HorizontalPodAutoscaler's desired replicas (load drills).",
            _WORKLOAD,
            registry=r,
        ),
        hpa_current_replicas=Gauge(
            "chaosdrill_hpa_current_replicas",
            "The HorizontalPodAutoscaler's current replicas (load drills).",
            _WORKLOAD,
            registry=r,
        ),
        container_restarts=Counter(
            "chaosdrill_container_restarts",
            "Container restarts observed in the workload's pods.",
            _WORKLOAD,
            registry=r,
        ),
        probe_requests=Counter(
            "chaosdrill_probe_requests",
            "HTTP availability probe requests, by result.",
            (*_WORKLOAD, "result"),
            registry=r,
        ),
        availability=Gauge(
            "chaosdrill_availability_ratio",
            "Share of successful probe requests during the drill, 0 to 1.",
            _WORKLOAD,
            registry=r,
        ),
        drill_running=Gauge(
            "chaosdrill_drill_running", "1 while a drill runs, else 0.", _WORKLOAD, registry=r
        ),
        last_fault_timestamp=Gauge(
            "chaosdrill_last_fault_timestamp_seconds",
            "Unix time of the last injected fault; 0 if none yet.",
            _FAULT,
            registry=r,
        ),
        slo_max_recovery=Gauge(
            "chaosdrill_slo_max_recovery_seconds",
            "The drill's SLO: the longest acceptable recovery.",
            _WORKLOAD,
            registry=r,
        ),
        slo_min_availability=Gauge(
            "chaosdrill_slo_min_availability_ratio",
            "The drill's SLO: the lowest acceptable availability, 0 to 1.",
            _WORKLOAD,
            registry=r,
        ),
        slo_max_scale_out=Gauge(
            "chaosdrill_slo_max_scale_out_seconds",
            "The load drill's SLO: the longest acceptable scale-out.",
            _WORKLOAD,
            registry=r,
        ),
        slo_max_scale_in=Gauge(
            "chaosdrill_slo_max_scale_in_seconds",
            "The load drill's SLO: the longest acceptable scale-in after the load.",
            _WORKLOAD,
            registry=r,
        ),
        build_info=Gauge("chaosdrill_build_info", "Always 1.", ("version",), registry=r),
    )
    families.build_info.labels(version=__version__).set(1)
    return families


_FAMILIES: WeakKeyDictionary[CollectorRegistry, _Families] = WeakKeyDictionary()
_FAMILIES_LOCK = threading.Lock()


def families_of(registry: CollectorRegistry) -> _Families:
    """REGISTRY's metric families, registered on first use."""
    with _FAMILIES_LOCK:
        families = _FAMILIES.get(registry)
        if families is None:
            families = _FAMILIES[registry] = _register(registry)
        return families


def register_families(registry: CollectorRegistry) -> None:
    """Every family on REGISTRY now, build_info set: an exporter that has run no drill yet (the
    operator's standby replica) still answers with what it is."""
    families_of(registry)
