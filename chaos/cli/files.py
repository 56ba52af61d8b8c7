"""`chaos-drill init` copies the shipped example drills (and dashboards) into a folder to edit;
`chaos-drill validate` checks drill files against the CRD's schema, and lesson plans with every
drill they name, without a cluster."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from chaos.cluster.base import Progress
from chaos.drill.loading import load_drill, read_yaml
from chaos.drill.plan import is_plan, load_plan
from chaos.errors import SpecError, UsageError
from chaos.resources import shipped


def init_command(args: argparse.Namespace, say: Progress) -> int:
    """Writes drills/ (and dashboards/ with --dashboards) into DIR; an existing file is refused
    before anything is written, unless --force."""
    target = Path(args.dir)
    sources = [("drills", shipped("manifests", "drills"))]
    if args.dashboards:
        sources.append(("dashboards", shipped("dashboards")))
    copies = [(path, target / folder / path.name) for folder, source in sources
              for path in sorted(source.iterdir()) if path.is_file()]
    existing = [str(destination) for _, destination in copies if destination.exists()]
    if existing and not args.force:
        raise UsageError(f"{existing[0]} exists ({len(existing)} of the files do): choose "
                         "another folder, or --force to overwrite them")
    for source, destination in copies:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    for folder, _ in sources:
        say(f"wrote {target / folder}/ ({sum(1 for _, d in copies if d.parent.name == folder)} "
            "files)")
    say(f"next: chaos-drill validate {target / 'drills'}/*.yaml, then chaos-drill run "
        f"{target / 'drills' / 'web-pod-kill.yaml'}")
    return 0


def validate_command(args: argparse.Namespace, say: Progress) -> int:
    """One line per file: valid, or the first problem with its field; 1 if any is invalid."""
    failed = 0
    for name in args.files:
        try:
            say(f"valid: {name} ({_check(name)})")
        except SpecError as error:
            failed += 1
            say(f"invalid: {error}")
    return 1 if failed else 0


def _check(name: str) -> str:
    """What a valid drill or lesson plan holds, in a few words; SpecError when invalid."""
    try:
        text = Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # load_drill says what is wrong with the file
    if text and is_plan(read_yaml(text, name)[0]):
        plan = load_plan(name)
        return f"lesson plan {plan.title!r}: {len(plan.steps)} steps"
    drill = load_drill(name)
    rounds = f"{drill.rounds} round" + ("s" if drill.rounds != 1 else "")
    return f"{drill.name}: {drill.fault.type}, {rounds}"
