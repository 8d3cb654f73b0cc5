"""The host side of `memory` in the REPL: the run's project memory (`[memory] path`),
each call recorded as an event (what a run remembered, recalled and forgot is in its
trajectory). The store is opened per call, off the event loop: SQLite is quick, and
runs of one project in other processes see each other's items at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.errors import ConfigError
from rlmrt.events import MemoryChanged, MemoryRecalled
from rlmrt.memory import MemoryStore

if TYPE_CHECKING:
    from rlmrt.engine.run import Run


async def remember(run: Run, text: str, tags: Sequence[str], pin: bool) -> str:
    _check_on(run)

    def write() -> str:
        with MemoryStore(run.config.memory.path) as store:
            return store.remember(text, tags=tags, pinned=pin).id

    item_id = await asyncio.to_thread(write)
    run.tree.emit(MemoryChanged(**_ids(run), action="remember", item_id=item_id, text=text))
    return item_id


async def recall(run: Run, query: str, k: int) -> list[dict[str, Any]]:
    _check_on(run)

    def read() -> list[dict[str, Any]]:
        with MemoryStore(run.config.memory.path) as store:
            return [
                {"id": i.id, "text": i.text, "kind": i.kind, "tags": i.tags, "pinned": i.pinned}
                for i in store.recall(query, k=k)
            ]

    items = await asyncio.to_thread(read)
    run.tree.emit(
        MemoryRecalled(
            **_ids(run),
            purpose="recall",
            items=[{"id": i["id"], "kind": i["kind"], "text": i["text"]} for i in items],
        )
    )
    return items


async def forget(run: Run, item_id: str) -> bool:
    _check_on(run)

    def delete() -> bool:
        with MemoryStore(run.config.memory.path) as store:
            return store.forget(item_id)

    gone = await asyncio.to_thread(delete)
    if gone:
        run.tree.emit(MemoryChanged(**_ids(run), action="forget", item_id=item_id, text=None))
    return gone


def _check_on(run: Run) -> None:
    if not run.config.memory.repl:
        raise ConfigError("memory is off for this run's code (memory_in_repl = false)")


def _ids(run: Run) -> dict[str, Any]:
    """A memory call's place in the tree: its own id, under the run that made it."""
    tree = run.tree
    return {
        "run_id": tree.run_id,
        "call_id": tree.new_call_id(),
        "parent_call_id": run.call_id,
        "depth": run.depth,
    }
