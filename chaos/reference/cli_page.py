"""docs/reference/cli.md: every command of `chaos-drill` with its arguments, walked from the
argument parser (chaos.cli.build_parser): positional arguments, flags, choices, defaults, help."""

from __future__ import annotations

import argparse

from chaos.cli.parser import build_parser
from chaos.reference.markdown import code, header, table


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """Each subcommand of PARSER: name, help line and its own parser, in the parser's order."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def argument(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(action.option_strings)
        takes = action.nargs != 0
        return code(f"{names} {action.metavar or action.dest.upper()}" if takes else names)
    return code(str(action.metavar or action.dest))


def details(action: argparse.Action) -> str:
    parts = [action.help or ""]
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        parts.append("one of " + ", ".join(code(str(c)) for c in action.choices))
    shown = action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0
    if shown and "default" not in (action.help or ""):
        parts.append(f"default {code(str(action.default))}")
    if not action.option_strings and action.nargs == argparse.OPTIONAL:
        parts.append("optional")
    if isinstance(action, argparse._AppendAction):
        parts.append("repeatable")
    return "; ".join(part for part in parts if part)


def arguments(parser: argparse.ArgumentParser) -> list[list[str]]:
    return [[argument(action), details(action)] for action in parser._actions
            if action.help != argparse.SUPPRESS
            and not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)]


def render() -> str:
    parser = build_parser()
    intro = ("Every command and flag of `chaos-drill` (also `python -m chaos`). Errors are one "
             "line naming the fix; the exit code is 0 on success (a drill that passed), 1 when "
             "a drill's SLO failed, 2 for bad input or no cluster.")
    lines = header("Command line", "chaos/cli.py", intro)
    commands = subcommands(parser)
    lines += table(["command", "what it does"],
                   [[f"[{code(name)}](#chaos-drill-{name})", text] for name, text, _ in commands])
    lines += ["## chaos-drill", ""] + table(["argument", "help"], arguments(parser))
    for name, text, sub in commands:
        lines += [f"## chaos-drill {name}", "", text, ""]
        lines += table(["argument", "help"], arguments(sub))
    return "\n".join(lines).rstrip() + "\n"
