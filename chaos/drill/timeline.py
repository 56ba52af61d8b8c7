"""Incident timelines: for each injected fault, when each recovery phase was first seen
(monotonic seconds), cross-checked against the API's own one-second timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from chaos.drill.fault_types import TRAFFIC_PHASES, Follow, fault_type
from chaos.drill.spec import DEFAULT_LOAD_SECONDS, Drill

API_RESOLUTION_SECONDS = 1.0
"""API timestamps (creationTimestamp, condition lastTransitionTime) are whole seconds."""


def phases_for(fault: str) -> tuple[str, ...]:
    """The ordered phases of an incident of this fault type, as chaos.drill.fault_types declares."""
    return fault_type(fault).phases


def all_phases(fault: str) -> tuple[str, ...]:
    """The fault's own phases, then the traffic phases it does not already have."""
    own = phases_for(fault)
    return own + tuple(phase for phase in TRAFFIC_PHASES if phase not in own)


def incident_id(round_number: int, index: int) -> str:
    """The id of the index-th incident (from 1) of a round (from 1): 'r2-i1'."""
    return f"r{round_number}-i{index}"


@dataclass(frozen=True)
class CrossCheck:
    """Whether the monotonic duration between two phases fits what the API's timestamps allow.

    A whole-second stamp s means the moment fell in [s, s + 1); a stamp with a fraction (the
    runner's own, at injection) is exact. So the API only bounds the duration, to
    [api_low_seconds, api_high_seconds]; the low end is never below 0.
    """

    first_phase: str
    last_phase: str
    monotonic_seconds: float
    api_low_seconds: float
    api_high_seconds: float
    margin_seconds: float

    @property
    def agrees(self) -> bool:
        """The watch's duration lies within the API's bounds, give or take the margin."""
        low, high = self.api_low_seconds, self.api_high_seconds
        return low - self.margin_seconds <= self.monotonic_seconds <= high + self.margin_seconds

    def api_bounds(self) -> str:
        """e.g. 'API 3.120 s', 'API 2.506 to 3.506 s' or 'API at most 0.506 s'."""
        low, high = self.api_low_seconds, self.api_high_seconds
        if high < 0:
            return f"API stamps {-high:.3f} s out of order (clocks differ?)"
        if high == low:
            return f"API {low:.3f} s"
        if low == 0:
            return f"API at most {high:.3f} s (one-second stamps)"
        return f"API {low:.3f} to {high:.3f} s (one-second stamps)"

    def detail(self) -> str:
        verdict = "agrees" if self.agrees else "DISAGREES"
        return (
            f"{self.first_phase}->{self.last_phase}: watch {self.monotonic_seconds:.3f} s, "
            f"{self.api_bounds()}, {verdict} within {self.margin_seconds:.2f} s"
        )


def api_resolution(stamp: datetime) -> float:
    """How much later than stamp the moment may have been: 1 s for a whole-second stamp."""
    return API_RESOLUTION_SECONDS if stamp.microsecond == 0 else 0.0


@dataclass
class Incident:
    """One injected fault and its recovery, built up as watch events arrive.

    phases maps phase -> monotonic seconds; the first arrival of a phase wins.
    """

    id: str
    round: int
    fault: str
    namespace: str
    workload: str
    target_pod: str
    target_uid: str = ""
    node: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    api_times: dict[str, datetime] = field(default_factory=dict)
    restart_count: int = 0
    exit_reason: str = ""
    """For an in-place restart: why the container exited (its terminated.reason: OOMKilled,
    Error, ...), as the kubelet reports it."""
    origin: str = "injected"
    """injected (by this drill) or observed (a disruption chaos-drill did not cause)."""
    injected_from: str = ""
    """For an observed incident: the API field its injected moment was taken from."""
    timing_uncertainty_seconds: float | None = None
    """For an observed incident: how much later than its injected moment it may have begun."""

    @property
    def observed(self) -> bool:
        return self.origin == "observed"
    peak_replicas: int = 0
    """For load: the most pods of the workload seen at once."""
    service: str = ""
    """The probed Service whose EndpointSlices held the target when injected; its incident
    then also has the traffic phases (endpoint_removed, endpoint_added)."""

    @property
    def own_phases(self) -> tuple[str, ...]:
        """The phases its fault type declares, in their order."""
        return phases_for(self.fault)

    @property
    def expected_phases(self) -> tuple[str, ...]:
        return all_phases(self.fault) if self.service else self.own_phases

    @property
    def follow(self) -> Follow:
        """How its fault type's incidents are followed (replacement, restart or scale)."""
        return fault_type(self.fault).follow

    def mark(self, phase: str, mono: float, api_time: datetime | None = None) -> bool:
        """Record phase at monotonic time mono; returns False for a duplicate (ignored).

        An API timestamp arriving with a duplicate is still kept if the phase had none.
        """
        if phase not in self.expected_phases:
            raise ValueError(f"{phase!r} is not a phase of {self.fault}: {self.expected_phases}")
        if api_time is not None:
            self.api_times.setdefault(phase, api_time)
        if phase in self.phases:
            return False
        self.phases[phase] = mono
        return True

    def record_restarts(self, restart_count: int) -> None:
        """Keep the highest container restart count seen for the target."""
        self.restart_count = max(self.restart_count, restart_count)

    def record_exit(self, reason: str) -> None:
        """Keep the first exit reason seen for the target's container."""
        self.exit_reason = self.exit_reason or reason

    @property
    def recovered(self) -> bool:
        return "injected" in self.phases and "ready" in self.phases

    @property
    def settled(self) -> bool:
        """Nothing more to follow: recovered, for load also scaled back in, and with a Service
        also back in rotation (unless its own pod never left it)."""
        if self.follow is Follow.AUTOSCALE:
            return self.recovered and "scaled_in" in self.phases
        if not self.recovered or not self.service or "endpoint_added" in self.phases:
            return self.recovered
        return self.follow is not Follow.REPLACEMENT and "endpoint_removed" not in self.phases

    @property
    def recovery_seconds(self) -> float | None:
        """ready - injected, or None if either is missing."""
        if not self.recovered:
            return None
        return self.phases["ready"] - self.phases["injected"]

    def reached(self) -> list[tuple[str, float]]:
        """The phases seen so far, in phase order (not arrival order)."""
        seen = self.phases
        return [(phase, seen[phase]) for phase in self.expected_phases if phase in seen]

    def offsets(self) -> dict[str, float]:
        """Each phase seen, as seconds after injected (empty until injected is seen)."""
        if "injected" not in self.phases:
            return {}
        start = self.phases["injected"]
        return {phase: mono - start for phase, mono in self.reached()}

    def phase_durations(self) -> dict[str, float]:
        """Each of its own phases seen after the first, minus the previous one seen."""
        own = [(phase, mono) for phase, mono in self.reached() if phase in self.own_phases]
        return {phase: mono - prev for (_, prev), (phase, mono) in pairwise(own)}

    def is_ordered(self) -> bool:
        """True when its own phases were seen in their order, and the traffic phases too."""
        own = [mono for phase, mono in self.reached() if phase in self.own_phases]
        traffic = [self.phases[p] for p in TRAFFIC_PHASES if p in self.phases]
        return all(a <= b for times in (own, traffic) for a, b in pairwise(times))

    def api_cross_check(self, margin_seconds: float = 0.25,
                        last_phase: str | None = None) -> CrossCheck | None:
        """Compare the first and last of its own phases that have API timestamps (or the first
        and LAST_PHASE, e.g. a traffic phase); None if fewer than two.

        The margin allows for watch delivery delay.
        """
        stamped = [phase for phase in self.own_phases if phase in self.api_times]
        stamped = [phase for phase in stamped if phase in self.phases]
        if last_phase is not None:
            if last_phase not in self.api_times or last_phase not in self.phases:
                return None
            stamped = [*stamped[:1], last_phase]
        if len(stamped) < 2:
            return None
        first, last = stamped[0], stamped[-1]
        first_at, last_at = self.api_times[first], self.api_times[last]
        difference = (last_at - first_at).total_seconds()
        return CrossCheck(
            first_phase=first,
            last_phase=last,
            monotonic_seconds=self.phases[last] - self.phases[first],
            api_low_seconds=max(0.0, difference - api_resolution(first_at)),
            api_high_seconds=difference + api_resolution(last_at),
            margin_seconds=margin_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict; from_dict reads it back."""
        return {
            "id": self.id,
            "round": self.round,
            "fault": self.fault,
            "namespace": self.namespace,
            "workload": self.workload,
            "target_pod": self.target_pod,
            "target_uid": self.target_uid,
            "node": self.node,
            "phases": dict(self.reached()),
            "api_times": {phase: time.isoformat() for phase, time in self.api_times.items()},
            "restart_count": self.restart_count,
            "exit_reason": self.exit_reason,
            "origin": self.origin,
            "injected_from": self.injected_from,
            "timing_uncertainty_seconds": self.timing_uncertainty_seconds,
            "peak_replicas": self.peak_replicas,
            "service": self.service,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        return cls(
            id=data["id"],
            round=int(data["round"]),
            fault=data["fault"],
            namespace=data["namespace"],
            workload=data["workload"],
            target_pod=data["target_pod"],
            target_uid=data.get("target_uid", ""),
            node=data.get("node", ""),
            phases={phase: float(mono) for phase, mono in data.get("phases", {}).items()},
            api_times={
                phase: datetime.fromisoformat(time)
                for phase, time in data.get("api_times", {}).items()
            },
            restart_count=int(data.get("restart_count", 0)),
            exit_reason=data.get("exit_reason", ""),
            origin=data.get("origin", "injected"),
            injected_from=data.get("injected_from", ""),
            timing_uncertainty_seconds=data.get("timing_uncertainty_seconds"),
            peak_replicas=int(data.get("peak_replicas", 0)),
            service=data.get("service", ""),
        )


def scale_in_seconds(incident: Incident, drill: Drill) -> float | None:
    """For load: from the planned end of the load until scaled_in; None before that."""
    if "scaled_in" not in incident.phases or "injected" not in incident.phases:
        return None
    seconds = drill.fault.duration_seconds or DEFAULT_LOAD_SECONDS
    return max(0.0, incident.phases["scaled_in"] - incident.phases["injected"] - seconds)
