"""Every Prometheus metric chaos-drill exports, and the loopback HTTP server that serves them.

Labels are bounded (namespace, workload, fault, result, phase); pod names and UIDs go to the
journal. Metrics live in an explicit `CollectorRegistry`, so tests and drills stay isolated.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from weakref import WeakKeyDictionary

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

from chaos import __version__
from chaos.drill.fault_types import NAMES, OBSERVED, Follow, fault_type
from chaos.drill.spec import Drill
from chaos.errors import SetupError

# Every counter and histogram child would also export a `_created` series: no dashboard or rule
# reads them, Prometheus 2 stores them as gauges, and they cost scrape time. The switch is
# process-wide in prometheus_client.
disable_created_metrics()  # type: ignore[no-untyped-call]

DEFAULT_METRICS_PORT = 9464
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


def _families_of(registry: CollectorRegistry) -> _Families:
    with _FAMILIES_LOCK:
        families = _FAMILIES.get(registry)
        if families is None:
            families = _FAMILIES[registry] = _register(registry)
        return families


def register_families(registry: CollectorRegistry) -> None:
    """Every family on REGISTRY now, build_info set: an exporter that has run no drill yet (the
    operator's standby replica) still answers with what it is."""
    _families_of(registry)


class DrillMetrics:
    """The metrics of one workload under drill; several may share a registry.

    `faults` is the closed set of fault names (pass `chaos.drill.fault_types.NAMES`). `phases`, if
    given, maps each fault to its ordered timeline phases (pass
    `chaos.drill.fault_types.PHASES_BY_FAULT`); durations lead into every phase after the first, so
    those are the allowed phase labels. Known series are created at 0 up front.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        namespace: str,
        workload: str,
        faults: Sequence[str],
        *,
        phases: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._m = _families_of(registry)
        self._labels = {"namespace": namespace, "workload": workload}
        self._faults = tuple(faults)
        self._phases = None if phases is None else {f: tuple(p[1:]) for f, p in phases.items()}
        self._clock = clock
        self._create_known_series()

    def _create_known_series(self) -> None:
        # New children start at 0; existing ones (a repeated drill of this workload) keep theirs.
        m, labels = self._m, self._labels
        for fault in self._faults:
            m.faults_injected.labels(**labels, fault=fault)
            m.recovery_seconds.labels(**labels, fault=fault)
            m.last_fault_timestamp.labels(**labels, fault=fault)
            if fault_type(fault).follow is Follow.AUTOSCALE:
                m.scale_out_seconds.labels(**labels, fault=fault)
                m.scale_in_seconds.labels(**labels, fault=fault)
            for result in INCIDENT_RESULTS:
                m.incidents.labels(**labels, fault=fault, result=result)
            for phase in self._phases_of(fault):
                m.phase_seconds.labels(**labels, fault=fault, phase=phase)
        for result in PROBE_RESULTS:
            m.probe_requests.labels(**labels, result=result)
        m.container_restarts.labels(**labels)
        m.drill_running.labels(**labels)

    def _fault(self, fault: str) -> str:
        if fault not in self._faults:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(self._faults)}")
        return fault

    def _phases_of(self, fault: str) -> tuple[str, ...]:
        return () if self._phases is None else self._phases.get(fault, ())

    def _phase(self, fault: str, phase: str) -> str:
        known = self._phases_of(fault)
        if self._phases is not None and phase not in known:
            raise ValueError(
                f"unknown phase {phase!r} of {fault}: expected one of {', '.join(known)}"
            )
        return phase

    def fault_injected(self, fault: str) -> None:
        """Count one injected fault and stamp its time (call right after the injection)."""
        labels = {**self._labels, "fault": self._fault(fault)}
        self._m.faults_injected.labels(**labels).inc()
        self._m.last_fault_timestamp.labels(**labels).set(self._clock())

    def incident_closed(
        self,
        fault: str,
        recovery_seconds: float | None,
        phase_durations: Mapping[str, float],
    ) -> None:
        """Record a finished incident; `recovery_seconds` is None when it never recovered.

        `phase_durations` maps each phase reached to the seconds since the previous one
        (`Incident.phase_durations()`).
        """
        labels = {**self._labels, "fault": self._fault(fault)}
        result = "unrecovered" if recovery_seconds is None else "recovered"
        self._m.incidents.labels(**labels, result=result).inc()
        if recovery_seconds is not None:
            self._m.recovery_seconds.labels(**labels).observe(recovery_seconds)
        for phase, seconds in phase_durations.items():
            phase_labels = {**labels, "phase": self._phase(fault, phase)}
            self._m.phase_seconds.labels(**phase_labels).observe(seconds)

    def replicas(self, ready: int, desired: int) -> None:
        """Set the workload's ready and desired replica counts."""
        self._m.ready_replicas.labels(**self._labels).set(ready)
        self._m.desired_replicas.labels(**self._labels).set(desired)

    def autoscaler(self, desired: int, current: int) -> None:
        """Set the HorizontalPodAutoscaler's desired and current replicas."""
        self._m.hpa_desired_replicas.labels(**self._labels).set(desired)
        self._m.hpa_current_replicas.labels(**self._labels).set(current)

    def scaled(self, fault: str, out_seconds: float | None, in_seconds: float | None) -> None:
        """Record how long an autoscaled incident took to scale out and back in."""
        labels = {**self._labels, "fault": self._fault(fault)}
        if out_seconds is not None:
            self._m.scale_out_seconds.labels(**labels).observe(out_seconds)
        if in_seconds is not None:
            self._m.scale_in_seconds.labels(**labels).observe(in_seconds)

    def container_restarts(self, n: int) -> None:
        """Add `n` newly observed container restarts (a delta, not the pods' total)."""
        self._m.container_restarts.labels(**self._labels).inc(n)

    def probe(self, ok: bool) -> None:
        """Count one availability probe request."""
        self._m.probe_requests.labels(**self._labels, result="ok" if ok else "error").inc()

    def availability(self, ratio: float) -> None:
        """Set the drill's availability so far, 0 to 1."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"availability must be between 0 and 1, got {ratio}")
        self._m.availability.labels(**self._labels).set(ratio)

    def running(self, running: bool) -> None:
        """Mark the drill as running (True) or finished (False)."""
        self._m.drill_running.labels(**self._labels).set(1 if running else 0)

    def slo(self, max_recovery_seconds: float, min_availability: float) -> None:
        """Publish the drill's SLO so alerts compare against it instead of the defaults."""
        self._m.slo_max_recovery.labels(**self._labels).set(max_recovery_seconds)
        self._m.slo_min_availability.labels(**self._labels).set(min_availability)

    def scale_slo(self, max_scale_out_seconds: float | None,
                  max_scale_in_seconds: float | None) -> None:
        """Publish a load drill's scale-out and scale-in SLOs (None: not set, not published)."""
        if max_scale_out_seconds is not None:
            self._m.slo_max_scale_out.labels(**self._labels).set(max_scale_out_seconds)
        if max_scale_in_seconds is not None:
            self._m.slo_max_scale_in.labels(**self._labels).set(max_scale_in_seconds)


def for_drill(registry: CollectorRegistry, drill: Drill) -> DrillMetrics:
    """The metrics of one drill run: every fault's series at 0, and phase series for the
    drill's own fault only (every fault's phase buckets would be most of each scrape)."""
    fault = drill.fault.type
    return DrillMetrics(registry, drill.namespace, drill.target.name or "selector", NAMES,
                        phases={fault: fault_type(fault).phases})


def for_watch(registry: CollectorRegistry, namespace: str, workload: str) -> DrillMetrics:
    """The metrics of `watch`: phase series for the faults an observed disruption is followed
    as (chaos.drill.fault_types.OBSERVED)."""
    return DrillMetrics(registry, namespace, workload, NAMES,
                        phases={fault: fault_type(fault).phases for fault in OBSERVED})


class MetricsServer:
    """An HTTP server answering /metrics from a background thread; `close()` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port: int = self._server.server_port
        self._closed = False

    @property
    def url(self) -> str:
        """The address of the metrics page."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve(
    registry: CollectorRegistry, port: int = DEFAULT_METRICS_PORT, host: str = "127.0.0.1"
) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics; port 0 picks a free port."""
    try:
        return MetricsServer(registry, port, host)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise SetupError(
                f"port {port} is already in use on {host}: pick another with --metrics-port"
            ) from None
        raise SetupError(
            f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
        ) from None
