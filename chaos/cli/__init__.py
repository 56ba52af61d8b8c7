"""The command line: the argument parser and `main` (parser), one module per command group
(commands: run, demo, cluster, monitor; watching: watch) and the wiring of the live views (views).
No drill logic lives here."""

from chaos.cli.parser import main

__all__ = ["main"]
