"""The summary of one recorded run: its question, answer, status and totals.

`rlm logs`, the visualizer, the MCP run resources and `rlm replay` all read a run
through `summarize`, so they agree on which run is the root, whether it finished and
what it cost (the totals come from `UsageLedger`, like the engine's).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rlmrt.events import Answer, Event, RunFinished, RunStarted
from rlmrt.observe.trajectory import iter_events
from rlmrt.observe.usage import UsageLedger

RunStatus = Literal["final", "partial", "error", "unfinished"]


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    path: Path
    started: float | None
    prompt: str
    model: str
    answer: str | None
    status: RunStatus
    stop_reason: str | None
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    wall_time_s: float | None
    root: RunStarted | None  # the root run's first event (None: the file holds no run)
    finished: RunFinished | None  # its last (None: still running, or killed)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def status_text(self) -> str:
        """The status, with the reason a partial run stopped."""
        if self.status == "partial":
            return f"partial ({self.stop_reason})"
        return self.status

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "path": str(self.path),
            "started": self.started,
            "prompt": self.prompt,
            "model": self.model,
            "answer": self.answer,
            "status": self.status,
            "partial": None if self.status == "unfinished" else self.status != "final",
            "stop_reason": self.stop_reason,
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "wall_time_s": self.wall_time_s,
        }


def summarize(events: Iterable[Event], *, run_id: str, path: Path) -> RunSummary:
    """The summary of the run whose events (from its trajectory at `path`) are given.

    The root run is the first one without a parent; an answer it marked ready counts
    even when the run never finished."""
    ledger = UsageLedger()
    root: RunStarted | None = None
    finished: RunFinished | None = None
    answer: str | None = None
    last_ts: float | None = None
    for event in events:
        ledger(event)
        last_ts = event.ts
        if root is None:
            if isinstance(event, RunStarted) and event.parent_call_id is None:
                root = event
        elif event.call_id == root.call_id:
            if isinstance(event, Answer):
                answer = event.answer
            elif isinstance(event, RunFinished):
                finished = event
                answer = event.answer if event.answer is not None else answer
    usage = ledger.total()
    status: RunStatus
    if finished is None:
        status = "unfinished"
        wall = last_ts - root.ts if root is not None and last_ts else None
    else:
        status = _status(finished)
        wall = usage.wall_time_s
    return RunSummary(
        run_id=run_id,
        path=path,
        started=root.ts if root else None,
        prompt=root.prompt if root else "",
        model=root.model if root else "",
        answer=answer,
        status=status,
        stop_reason=finished.stop_reason if finished else None,
        model_calls=usage.model_calls,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
        wall_time_s=wall,
        root=root,
        finished=finished,
    )


def read_summary(
    path: Path, *, run_id: str | None = None, skim: bool = False
) -> tuple[list[Event], RunSummary]:
    """The events of the trajectory at `path` and their summary (`run_id` defaults to
    the file's name). With `skim`, long strings are cut (`iter_events`): for display."""
    events = list(iter_events(path, skim=skim))
    return events, summarize(events, run_id=run_id or path.stem, path=path)


def summary_of(path: Path, *, run_id: str | None = None) -> RunSummary:
    """The summary of the trajectory at `path`, read one skimmed line at a time: its
    memory does not grow with the file (`rlm logs` lists runs with it)."""
    return summarize(iter_events(path, skim=True), run_id=run_id or path.stem, path=path)


def _status(finished: RunFinished) -> RunStatus:
    if finished.stop_reason == "error":
        return "error"
    return "partial" if finished.partial else "final"
