"""The `check` command: the weak spots of a workload's live spec, before any drill."""

from __future__ import annotations

import argparse

from chaos.cluster import kube, providers
from chaos.cluster.base import Progress
from chaos.cluster.kube import WORKLOAD_KINDS
from chaos.drill.resolve import resolve_target
from chaos.drill.spec import Target
from chaos.errors import UsageError
from chaos.results.weak_spots import finding_lines, spec_findings
from chaos.run.facts import read_facts


def parse_target(value: str) -> Target:
    """'Deployment/web' as a Target; a one-line UsageError for anything else."""
    kind, _, name = value.partition("/")
    if kind not in WORKLOAD_KINDS or not name or "/" in name:
        raise UsageError(f"--target {value!r} is not KIND/NAME: give e.g. Deployment/web (KIND "
                         f"one of {', '.join(WORKLOAD_KINDS)})")
    return Target(kind, name, {})


def check_command(args: argparse.Namespace, say: Progress) -> int:
    """Prints each finding (what, evidence, fix); exit 0 with none, 1 with findings."""
    target = parse_target(args.target)
    provider = providers.from_args(args)
    api = kube.api_client(provider.kubeconfig())
    workload = resolve_target(api, args.namespace, target, flag="--target")
    facts = read_facts(api, workload)
    findings = spec_findings(facts)
    if not findings:
        print(f"{facts.title}: no weak spots found", flush=True)
        return 0
    print("\n".join(finding_lines(findings, f"{facts.title}: weak spots")), flush=True)
    return 1
