"""The live terminal view for workshops: on a terminal, a full view (pods per node, incidents with
their phases, availability) redrawn in place by rich while progress lines scroll above it; when
stderr is not a terminal, plain `chaos-drill: ...` lines only, as CI logs want them."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from chaos.observe.observer import Observer
from chaos.view.model import ViewModel
from chaos.view.terminal import render


class _Forgiving:
    """A stream whose writes never raise: a closed terminal (SIGHUP) must not stop the drill's
    restore. Everything else is the wrapped stream's."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.out.write(text)
            except (OSError, ValueError):
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.out.flush()
            except (OSError, ValueError):
                self.broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


class LiveView:
    """Wraps progress output; on a terminal it keeps the live view at the bottom. `say` may be
    called from any thread (the signal watcher's too): it takes only rich's console lock."""

    def __init__(self, out: TextIO | None = None, refresh_seconds: float = 0.2) -> None:
        self.stream = _Forgiving(out or sys.stderr)
        self.tty = self.stream.isatty()
        self.refresh = refresh_seconds
        self.model: ViewModel | None = None
        self.console = Console(file=self.stream, highlight=False, markup=False, emoji=False,  # type: ignore[arg-type]
                               force_terminal=self.tty or None)
        self._live: Live | None = None
        self._lock = threading.Lock()  # plain lines from several threads stay whole

    def say(self, message: str) -> None:
        line = f"chaos-drill: {message}"
        if self._live is None:
            with self._lock:
                self.stream.write(line + "\n")
                self.stream.flush()
        else:
            self.console.print(Text(line), soft_wrap=True)

    def attach(self, observer: Observer | None, workload: str,
               model: ViewModel | None = None) -> None:
        """Shows MODEL (a new one listening to OBSERVER if none is given) while on a terminal."""
        if model is None:
            assert observer is not None, "a view without a model needs an observer"
            model = ViewModel(workload)
            model.set_workload("", workload, "")
            observer.add_listener(model)
        self.model = model
        if self.tty:
            self._live = Live(get_renderable=self._render, console=self.console,
                              refresh_per_second=1 / self.refresh, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()

    def _render(self) -> Any:
        assert self.model is not None
        return render(self.model.snapshot())

    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()
