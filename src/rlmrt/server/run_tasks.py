"""The async runs this server process is running: one asyncio task each, by run id."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class RunTasks:
    """Tasks of runs: started, cancelled by id, all cancelled when the server stops."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = False  # the server stops: its runs end failed, not cancelled

    def start(self, run_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"run {run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(run_id, None))

    def cancel(self, run_id: str) -> asyncio.Task[None] | None:
        """Cancel the run's task if it runs here (the task, to wait for; else None)."""
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
        return task

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._tasks

    async def aclose(self) -> None:
        self.stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
