"""Usage and cost of a run tree, computed from its events.

The same ledger serves a live run (subscribed to the bus, where budgets read it) and
`rlm logs` (fed the events of a trajectory file), so the numbers always agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rlmrt.events import (
    Event,
    ModelCallFailed,
    ModelCallFinished,
    RunFinished,
    RunStarted,
    SubCallStarted,
)


@dataclass(slots=True)
class Usage:
    """Tokens, model calls, cost and wall time of a run and everything below it."""

    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    # parts of the token counts above, where providers report them
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, float | int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model_calls": self.model_calls,
            "cost_usd": round(self.cost_usd, 8),
            "wall_time_s": round(self.wall_time_s, 6),
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


class UsageLedger:
    """Rebuilds the run tree from events and adds each model call to its run and all
    the runs above it (a child's usage counts in its parent's totals)."""

    def __init__(self) -> None:
        self._usage: dict[str, Usage] = {}
        self._parent_run: dict[str, str | None] = {}  # run call_id -> parent run call_id
        self._owner: dict[str, str] = {}  # sub-call id -> run call_id that made it
        self._started: dict[str, float] = {}
        self.root: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            parent = event.parent_call_id
            self._parent_run[event.call_id] = self._owning_run(parent) if parent else None
            self._usage[event.call_id] = Usage()
            self._started[event.call_id] = event.ts
            if parent is None and self.root is None:
                self.root = event.call_id
        elif isinstance(event, SubCallStarted) and event.parent_call_id is not None:
            self._owner[event.call_id] = self._owning_run(event.parent_call_id)
        elif isinstance(event, ModelCallFinished) and event.parent_call_id is not None:
            run: str | None = self._owning_run(event.parent_call_id)
            while run is not None:
                usage = self._usage.setdefault(run, Usage())
                usage.input_tokens += event.input_tokens
                usage.output_tokens += event.output_tokens
                usage.model_calls += event.attempts
                usage.cost_usd += event.cost_usd
                usage.cache_read_tokens += event.cache_read_tokens
                usage.cache_write_tokens += event.cache_write_tokens
                usage.reasoning_tokens += event.reasoning_tokens
                run = self._parent_run.get(run)
        elif isinstance(event, ModelCallFailed) and event.parent_call_id is not None:
            # a failed request was still made (and may be billed): it counts as a call
            run = self._owning_run(event.parent_call_id)
            while run is not None:
                self._usage.setdefault(run, Usage()).model_calls += event.attempts
                run = self._parent_run.get(run)
        elif isinstance(event, RunFinished) and event.call_id in self._started:
            self._usage[event.call_id].wall_time_s = event.ts - self._started[event.call_id]

    def _owning_run(self, call_id: str) -> str:
        return self._owner.get(call_id, call_id)

    def usage(self, run_call_id: str) -> Usage:
        """A copy of the usage of one run (its subtree)."""
        return dataclasses.replace(self._usage.get(run_call_id, Usage()))

    def total(self) -> Usage:
        """Usage of the whole tree (the root run's)."""
        return self.usage(self.root) if self.root else Usage()
