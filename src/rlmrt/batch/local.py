"""Records run in this process, on one RLM (its sandbox pool and connections shared)."""

from __future__ import annotations

import time
from typing import Any

from rlmrt.batch.dataset import BatchRecord
from rlmrt.batch.results import RecordResult
from rlmrt.config import RLMConfig
from rlmrt.engine.rlm import RLM
from rlmrt.engine.start import RunResult
from rlmrt.errors import RLMError


class LocalExecutor:
    """Runs each record with `RLM.acompletion`; a run that raises is that record's error."""

    def __init__(self, config: RLMConfig, rlm: RLM | None = None) -> None:
        self._rlm = rlm or RLM(config=config)

    def share(self, value: Any) -> Any:
        return value

    async def run(self, record: BatchRecord, context: Any) -> RecordResult:
        return await run_record(self._rlm, record, context)

    async def aclose(self) -> None:
        await self._rlm.aclose()


async def run_record(rlm: RLM, record: BatchRecord, context: Any) -> RecordResult:
    """One record's run, its failure included in the result."""
    started = time.perf_counter()
    try:
        result = await rlm.acompletion(record.prompt, context)
    except RLMError as exc:
        return failed_record(record, exc, started)
    return finished_record(record, result, started)


def run_record_sync(rlm: RLM, record: BatchRecord, context: Any, node: str) -> RecordResult:
    """`run_record` on the RLM's own loop, for a worker process that keeps the RLM
    between tasks (its connections and sandbox pool live on that loop)."""
    started = time.perf_counter()
    try:
        result = rlm.completion(record.prompt, context)
    except RLMError as exc:
        return failed_record(record, exc, started, node)
    return finished_record(record, result, started, node)


def failed_record(
    record: BatchRecord, exc: BaseException, started: float, node: str | None = None
) -> RecordResult:
    return RecordResult(
        id=record.id,
        answer=None,
        partial=True,
        stop_reason="error",
        error=f"{type(exc).__name__}: {exc}",
        seconds=time.perf_counter() - started,
        node=node,
    )


def finished_record(
    record: BatchRecord, result: RunResult, started: float, node: str | None = None
) -> RecordResult:
    return RecordResult(
        id=record.id,
        answer=result.answer,
        partial=result.partial,
        stop_reason=result.stop_reason,
        run_id=result.run_id,
        usage=result.usage.to_dict(),
        seconds=time.perf_counter() - started,
        node=node,
    )
