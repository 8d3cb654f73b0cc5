"""Running a batch: records in, one result line each out, on an executor (in-process
or Ray), within a total budget, skipping what an earlier run of the batch finished."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rlmrt.batch.dataset import BatchRecord
from rlmrt.batch.results import RecordResult, ResultFile
from rlmrt.batch.scoring import Match, is_right
from rlmrt.config import RLMConfig
from rlmrt.engine.context_input import load_context
from rlmrt.errors import RLMError
from rlmrt.memory import Feedback, MemoryStore


class Executor(Protocol):
    """Where records run. `run` gives the record's result, errors included (a failed
    run is a result with `error`, never an exception)."""

    async def run(self, record: BatchRecord, context: Any) -> RecordResult: ...

    def share(self, value: Any) -> Any:
        """A context loaded once, in the form tasks take it (Ray: an object ref)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class BatchSummary:
    """What a batch did; `accuracy` counts only records with an expected answer."""

    total: int
    ran: int = 0
    already_done: int = 0
    errors: int = 0
    partial: int = 0
    scored: int = 0
    correct: int = 0
    not_run: int = 0
    stopped_by: str | None = None  # the total budget that stopped scheduling
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    results: list[RecordResult] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    def add(self, result: RecordResult, *, now: bool) -> None:
        self.results.append(result)
        if now:
            self.ran += 1
            usage = result.usage
            self.input_tokens += int(usage.get("input_tokens", 0))
            self.output_tokens += int(usage.get("output_tokens", 0))
            self.cost_usd += float(usage.get("cost_usd", 0.0))
        else:
            self.already_done += 1
        self.errors += result.error is not None
        self.partial += result.error is None and result.partial
        if result.correct is not None:
            self.scored += 1
            self.correct += result.correct


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How a batch is bounded beyond each run's own budget (the `[budget]` settings)."""

    concurrency: int = 4
    total_budget_usd: float | None = None
    total_budget_tokens: int | None = None
    match: Match = "exact"
    feedback: bool = True  # scored runs are judged good or bad in the project's memory


ProgressHandler = Callable[[RecordResult, BatchSummary], None]


async def run_batch(
    records: list[BatchRecord],
    out: Path,
    executor: Executor,
    limits: BatchLimits,
    config: RLMConfig,
    *,
    on_result: ProgressHandler | None = None,
) -> BatchSummary:
    """Run every record not already in `out`, appending each result as it ends."""
    started = time.perf_counter()
    output = ResultFile(out)
    done = output.done()
    summary = BatchSummary(total=len(records))
    todo: list[BatchRecord] = []
    for record in records:
        if record.id in done:
            summary.add(done[record.id], now=False)
        else:
            todo.append(record)
    contexts = _Contexts(config, executor)
    by_id = records_by_id(records)
    memory = MemoryStore(config.memory.path) if limits.feedback else None
    running: set[asyncio.Task[RecordResult]] = set()
    queue = iter(todo)
    try:
        while True:
            while len(running) < limits.concurrency and summary.stopped_by is None:
                upcoming = next(queue, None)
                if upcoming is None:
                    break
                try:
                    context = await contexts.get(upcoming)
                except RLMError as exc:  # its context cannot be read: that record fails
                    running.add(asyncio.ensure_future(_failed(upcoming, f"context: {exc}")))
                    continue
                running.add(asyncio.ensure_future(executor.run(upcoming, context)))
            if not running:
                break
            finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                result = _scored(task.result(), by_id, limits.match)
                output.append(result)
                if memory is not None:
                    _judge(memory, result, by_id[result.id])
                summary.add(result, now=True)
                if on_result is not None:
                    on_result(result, summary)
            summary.stopped_by = summary.stopped_by or _over_total(summary, limits)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if memory is not None:
            memory.close()
    summary.not_run = summary.total - summary.ran - summary.already_done
    summary.wall_time_s = time.perf_counter() - started
    return summary


def _judge(memory: MemoryStore, result: RecordResult, record: BatchRecord) -> None:
    """A scored run's verdict, kept for learning (`rlm memory learn`)."""
    if result.correct is None or result.run_id is None:
        return
    memory.give_feedback(
        Feedback(
            run_id=result.run_id,
            verdict="good" if result.correct else "bad",
            expected=result.expected,
            prompt=record.prompt,
            answer=result.answer,
            note="judged by rlm batch against the record's expected answer",
        )
    )


async def _failed(record: BatchRecord, error: str) -> RecordResult:
    return RecordResult(id=record.id, answer=None, partial=True, stop_reason="error", error=error)


def records_by_id(records: list[BatchRecord]) -> dict[str, BatchRecord]:
    return {record.id: record for record in records}


def _scored(result: RecordResult, records: dict[str, BatchRecord], match: Match) -> RecordResult:
    expected = records[result.id].expected
    if expected is None:
        return result
    return replace(result, expected=expected, correct=is_right(result.answer, expected, match))


def _over_total(summary: BatchSummary, limits: BatchLimits) -> str | None:
    if limits.total_budget_usd is not None and summary.cost_usd >= limits.total_budget_usd:
        return f"total_budget_usd ({limits.total_budget_usd})"
    tokens = summary.input_tokens + summary.output_tokens
    if limits.total_budget_tokens is not None and tokens >= limits.total_budget_tokens:
        return f"total_budget_tokens ({limits.total_budget_tokens})"
    return None


class _Contexts:
    """Each context file or folder loaded once (and handed to the executor once)."""

    def __init__(self, config: RLMConfig, executor: Executor) -> None:
        self._config = config
        self._executor = executor
        self._loaded: dict[Path, Any] = {}
        self._failed: dict[Path, RLMError] = {}

    async def get(self, record: BatchRecord) -> Any:
        if record.context_path is None:
            return record.context
        path = record.context_path.resolve()
        if path in self._failed:
            raise self._failed[path]
        if path not in self._loaded:
            try:
                loaded = await asyncio.to_thread(load_context, path, self._config.input)
            except RLMError as exc:
                self._failed[path] = exc
                raise
            self._loaded[path] = self._executor.share(loaded.value)
        return self._loaded[path]
