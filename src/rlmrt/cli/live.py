"""Progress of a run while it happens: a live tree on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live

from rlmrt.cli.calltree import render_tree
from rlmrt.events import Event
from rlmrt.observe.calltree import CallTree
from rlmrt.observe.describe import describe

LIVE_CHILDREN = 8  # children shown per busy node in the live view (the latest ones)


class LiveTree:
    """The run tree, redrawn several times a second on `console` (stderr)."""

    def __init__(self, console: Console) -> None:
        self.tree = CallTree()
        self._live = Live(
            console=console,
            get_renderable=self._render,
            refresh_per_second=8,
            vertical_overflow="ellipsis",
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def _render(self) -> RenderableType:
        return render_tree(
            self.tree, now=time.time(), collapse_done=True, max_children=LIVE_CHILDREN
        )

    def __call__(self, event: Event) -> None:
        self.tree(event)

    def __enter__(self) -> LiveTree:
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.tree.root is None:
            self._live.transient = True  # the run never started: leave no "waiting" line
        self._live.stop()  # draws the last state, with finished iterations folded


class PlainProgress:
    """One line per event on `stream` (stderr), for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._start: float | None = None

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is None:
            return
        if self._start is None:
            self._start = event.ts
        stream = self._stream or sys.stderr
        indent = "  " * event.depth
        stream.write(f"[{event.ts - self._start:7.2f}s] {indent}{line}\n")
        stream.flush()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None
