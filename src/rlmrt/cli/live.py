"""Progress of a run while it happens: a live tree on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console, RenderableType
from rich.live import Live

from rlmrt.cli import _format as fmt
from rlmrt.cli.calltree import CallTree
from rlmrt.events import (
    Answer,
    BudgetWarning,
    CodeExecuted,
    CostWarning,
    Event,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    RunErrored,
    RunFinished,
    RunStarted,
    SubCallFinished,
    SubCallStarted,
)

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
        return self.tree.render(now=time.time(), collapse_done=True, max_children=LIVE_CHILDREN)

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


def describe(event: Event) -> str | None:
    """A one-line description of `event` (None for events not worth a line)."""
    if isinstance(event, RunStarted):
        return (
            f'run started: "{fmt.preview(event.prompt)}" (model {event.model}, sandbox '
            f"{event.sandbox}, {fmt.context(event.context_metadata)})"
        )
    if isinstance(event, ModelCallStarted):
        return f"model call ({event.purpose}) to {event.model}"
    if isinstance(event, ModelCallFinished):
        return (
            f"model call ({event.purpose}) done: {event.input_tokens:,} in / "
            f"{event.output_tokens:,} out tok, {fmt.cost(event.cost_usd)}, "
            f"{fmt.duration(event.duration_s)}"
        )
    if isinstance(event, ModelCallFailed):
        return f"model call ({event.purpose}) failed: {event.error_type}: {event.message}"
    if isinstance(event, CodeExecuted):
        if event.error:
            lines = event.error.strip().splitlines()
            result = "error: " + (lines[-1] if lines else "?")
        else:
            result = fmt.preview(event.stdout) or "(no output)"
        return f"code ran (iteration {event.iteration}, {fmt.duration(event.duration_s)}): {result}"
    if isinstance(event, SubCallStarted):
        return f'{event.sub_kind}_query: "{fmt.preview(event.prompt)}"'
    if isinstance(event, SubCallFinished):
        outcome = "done" if event.ok else f"failed: {event.error}"
        return f"{event.sub_kind}_query {outcome} ({fmt.duration(event.duration_s)})"
    if isinstance(event, (BudgetWarning, CostWarning)):
        return f"warning: {event.message}"
    if isinstance(event, Answer):
        return "partial answer (best effort)" if event.partial else f"answer ready ({event.source})"
    if isinstance(event, RunErrored):
        return f"error: {event.error_type}: {event.message}"
    if isinstance(event, RunFinished):
        usage = event.usage
        total = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        return (
            f"run finished: {event.stop_reason}, {event.iterations} iterations, "
            f"{fmt.tokens(total)}, {fmt.cost(float(usage.get('cost_usd', 0.0)))}, "
            f"{fmt.duration(float(usage.get('wall_time_s', 0.0)))}"
        )
    return None
