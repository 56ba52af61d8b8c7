"""The verdict of a run: one check per line (the run completed, every incident recovered, and each
SLO the drill sets), each with the figures that decided it; each becomes a JUnit test case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaos.drill.spec import Slo
from chaos.results.availability import Availability
from chaos.results.incidents import IncidentResult, RecoveryStats
from chaos.results.journal import JournalRecord


@dataclass(frozen=True)
class SloCheck:
    """One verdict line; each becomes a JUnit test case."""

    name: str
    passed: bool
    detail: str


def slo_checks(
    slo: Slo | None,
    watch: bool,
    finish: JournalRecord | None,
    dry_run: bool,
    incidents: Sequence[IncidentResult],
    recovery: RecoveryStats,
    availability: Availability,
) -> tuple[SloCheck, ...]:
    """The verdict lines: the run completed, every incident recovered, and each SLO the drill
    sets (none for a dry run or a watch)."""
    checks = [_completed_check(finish, watch),
              _recovered_check(incidents, dry_run, watch)]
    if dry_run or slo is None:
        return tuple(checks)
    if slo.max_recovery_seconds is not None:
        checks.append(_recovery_check(slo.max_recovery_seconds, incidents, recovery))
    if slo.min_availability is not None:
        checks.append(_availability_check(slo.min_availability, availability))
    if slo.max_scale_out_seconds is not None:
        checks.append(_scale_check("max_scale_out_seconds", slo.max_scale_out_seconds,
                                   {i.id: i.recovery_seconds for i in incidents}))
    if slo.max_scale_in_seconds is not None:
        checks.append(_scale_check("max_scale_in_seconds", slo.max_scale_in_seconds,
                                   {i.id: i.scale_in_seconds for i in incidents}))
    return tuple(checks)


def _scale_check(name: str, limit: float, seconds: Mapping[str, float | None]) -> SloCheck:
    """Scale-out (ready - injected) or scale-in (scaled_in - end of load) of every incident."""
    if not seconds:
        return SloCheck(name, False, f"no incident to measure; need <= {limit} s")
    missing = [key for key, value in seconds.items() if value is None]
    if missing:
        return SloCheck(name, False, f"{len(missing)} incidents never got there (first "
                        f"{missing[0]}); need all <= {limit} s")
    slowest = max(seconds, key=lambda key: seconds[key] or 0.0)
    worst = seconds[slowest] or 0.0
    return SloCheck(name, worst <= limit, f"slowest {worst:.3f} s ({slowest}), need <= {limit} s")


def _completed_check(finish: JournalRecord | None, watch: bool = False) -> SloCheck:
    if finish is None:
        return SloCheck("drill_completed", False, "the run ended without drill_finished")
    if finish.get("aborted"):
        return SloCheck("drill_completed", False, f"aborted: {finish.get('reason') or '?'}")
    return SloCheck("drill_completed", True, "the watch ended" if watch else "every round ran")


def _recovered_check(incidents: Sequence[IncidentResult], dry_run: bool,
                     watch: bool = False) -> SloCheck:
    if not incidents:
        detail = ("dry run: nothing injected" if dry_run else "no disruption seen" if watch
                  else "no fault was injected")
        return SloCheck("all_recovered", dry_run or watch, detail)
    failed = [i for i in incidents if i.recovery_seconds is None]
    if failed:
        worst = failed[0]
        detail = f"{len(failed)} of {len(incidents)} never recovered, first {worst.id} "
        return SloCheck("all_recovered", False, detail + f"({worst.reason or 'no reason'})")
    return SloCheck("all_recovered", True, f"all {len(incidents)} incidents recovered")


def _recovery_check(
    limit: float, incidents: Sequence[IncidentResult], recovery: RecoveryStats
) -> SloCheck:
    name = "max_recovery_seconds"
    missing = sum(1 for i in incidents if i.recovery_seconds is None)
    if not incidents:
        return SloCheck(name, False, f"no incident to measure; need <= {limit} s")
    if recovery.max is None or missing:
        detail = f"{missing} incidents without a recovery time; need all <= {limit} s"
        return SloCheck(name, False, detail)
    slowest = max(incidents, key=lambda i: i.recovery_seconds or 0.0)
    detail = f"slowest recovery {recovery.max:.3f} s ({slowest.id}), need <= {limit} s"
    return SloCheck(name, recovery.max <= limit, detail)


def _availability_check(minimum: float, availability: Availability) -> SloCheck:
    name = "min_availability"
    if availability.ratio is None:
        detail = (f"the probe recorded no request, need {minimum}: its prober reported no "
                  "window before the drill ended")
        return SloCheck(name, False, detail)
    detail = (
        f"{availability.ratio:.4f} of {availability.requests} requests succeeded, need "
        f">= {minimum}; longest outage {availability.longest_outage_seconds:.3f} s"
    )
    return SloCheck(name, availability.ratio >= minimum, detail)
