"""The host side of `memory` in the REPL: the run's memory (the project's store at
`[memory] path`, or the backend its engine was given), each call recorded as an event
(what a run remembered, recalled and forgot is in its trajectory)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.errors import ConfigError
from rlmrt.events import MemoryChanged, MemoryRecalled

if TYPE_CHECKING:
    from rlmrt.engine.run import Run


async def remember(run: Run, text: str, tags: Sequence[str], pin: bool) -> str:
    _check_on(run)
    item = await run.tree.memory.remember(text, tags=tags, pinned=pin)
    run.tree.emit(MemoryChanged(**_ids(run), action="remember", item_id=item.id, text=text))
    return item.id


async def recall(run: Run, query: str, k: int) -> list[dict[str, Any]]:
    _check_on(run)
    found = await run.tree.memory.recall(query, k=k)
    run.tree.emit(
        MemoryRecalled(
            **_ids(run),
            purpose="recall",
            items=[{"id": i.id, "kind": i.kind, "text": i.text} for i in found],
        )
    )
    items: list[dict[str, Any]] = [
        {"id": i.id, "text": i.text, "kind": i.kind, "tags": i.tags, "pinned": i.pinned}
        for i in found
    ]
    return items


async def forget(run: Run, item_id: str) -> bool:
    _check_on(run)
    gone = await run.tree.memory.forget(item_id)
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
