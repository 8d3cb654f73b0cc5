"""Batch runs: one RLM run per record of a JSONL dataset, resumable, scored against
expected answers, in this process or on Ray (the `batch` extra)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from rlmrt.batch.dataset import BatchRecord, read_dataset
from rlmrt.batch.results import RecordResult, ResultFile
from rlmrt.batch.runner import BatchLimits, BatchSummary, Executor, ProgressHandler, run_batch
from rlmrt.batch.scoring import Match, is_right
from rlmrt.config import RLMConfig, load_config

__all__ = [
    "BatchLimits",
    "BatchRecord",
    "BatchSummary",
    "Match",
    "RecordResult",
    "ResultFile",
    "abatch",
    "batch",
    "is_right",
    "read_dataset",
]

ExecutorKind = Literal["local", "ray"]


async def abatch(
    dataset: Path | str,
    out: Path | str,
    *,
    config: RLMConfig | None = None,
    executor: ExecutorKind = "local",
    ray_address: str | None = None,
    limits: BatchLimits | None = None,
    on_result: ProgressHandler | None = None,
    **settings: Any,
) -> BatchSummary:
    """Run every record of `dataset` (JSONL) not already in `out`; see `batch`."""
    config = config or load_config(**settings)
    records = read_dataset(Path(dataset))
    runner = _executor(executor, config, ray_address)
    try:
        return await run_batch(
            records, Path(out), runner, limits or BatchLimits(), config, on_result=on_result
        )
    finally:
        await runner.aclose()


def batch(dataset: Path | str, out: Path | str, **kwargs: Any) -> BatchSummary:
    """One RLM run per record of `dataset`, each result appended to `out` as it ends.

    A record is `{"id", "prompt" (or "question"), "context" | "context_path",
    "expected"}`; records already in `out` are skipped, so a stopped batch resumes.
    `executor="ray"` runs on a local Ray runtime, or the cluster at `ray_address`."""
    return asyncio.run(abatch(dataset, out, **kwargs))


def _executor(kind: ExecutorKind, config: RLMConfig, ray_address: str | None) -> Executor:
    if kind == "ray":
        from rlmrt.batch.ray_executor import RayExecutor

        return RayExecutor(config, ray_address)
    from rlmrt.batch.local import LocalExecutor

    return LocalExecutor(config)
