"""Where a run's memory lives, as the engine reaches it: the project's SQLite store
(`FileMemory`, the default) or another store keyed by its owner (the API server keeps
each tenant's in its own database, `rlmrt.server.memory`).

The engine only remembers, recalls, forgets and lists pinned items; the CLI's `rlm
memory` commands and learning work on the project's `MemoryStore` itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from rlmrt.errors import ConfigError
from rlmrt.memory.store import MemoryItem, MemoryKind, MemoryStore


class MemoryBackend(Protocol):
    """A run's memory: every method may be called from the engine's event loop."""

    async def remember(self, text: str, *, tags: Sequence[str], pinned: bool) -> MemoryItem: ...

    async def recall(
        self, query: str, *, k: int = 5, kind: MemoryKind | None = None
    ) -> list[MemoryItem]: ...

    async def forget(self, item_id: str) -> bool: ...

    async def pinned(self) -> list[MemoryItem]:
        """The pinned items, oldest first."""
        ...

    async def for_prompt(
        self, question: str, *, lessons: int
    ) -> tuple[list[MemoryItem], list[MemoryItem]]:
        """What a run's first prompt reads, in one read: the pinned items (oldest
        first) and up to `lessons` lessons ranked by `question` (0: none)."""
        ...


class FileMemory:
    """The SQLite store at `path`, opened per call off the event loop (SQLite is quick,
    and runs of one project in other processes see each other's items at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def remember(self, text: str, *, tags: Sequence[str], pinned: bool) -> MemoryItem:
        def write() -> MemoryItem:
            with MemoryStore(self.path) as store:
                return store.remember(text, tags=tags, pinned=pinned)

        return await asyncio.to_thread(write)

    async def recall(
        self, query: str, *, k: int = 5, kind: MemoryKind | None = None
    ) -> list[MemoryItem]:
        def read() -> list[MemoryItem]:
            with MemoryStore(self.path) as store:
                return store.recall(query, k=k, kind=kind)

        return await asyncio.to_thread(read)

    async def forget(self, item_id: str) -> bool:
        def delete() -> bool:
            with MemoryStore(self.path) as store:
                return store.forget(item_id)

        return await asyncio.to_thread(delete)

    async def pinned(self) -> list[MemoryItem]:
        def read() -> list[MemoryItem]:
            with MemoryStore(self.path) as store:
                return store.items(pinned=True)

        return await asyncio.to_thread(read)

    async def for_prompt(
        self, question: str, *, lessons: int
    ) -> tuple[list[MemoryItem], list[MemoryItem]]:
        def read() -> tuple[list[MemoryItem], list[MemoryItem]]:
            with MemoryStore(self.path) as store:
                pinned = store.items(pinned=True)
                found = store.recall(question, k=lessons, kind="lesson") if lessons else []
                return pinned, found

        return await asyncio.to_thread(read)


class NoMemory:
    """A run with no memory (a server run whose tenant is not known): nothing is
    recalled, and remembering is refused rather than written anywhere shared."""

    async def remember(self, text: str, *, tags: Sequence[str], pinned: bool) -> MemoryItem:
        raise ConfigError("this run has no memory to remember into")

    async def recall(
        self, query: str, *, k: int = 5, kind: MemoryKind | None = None
    ) -> list[MemoryItem]:
        return []

    async def forget(self, item_id: str) -> bool:
        return False

    async def pinned(self) -> list[MemoryItem]:
        return []

    async def for_prompt(
        self, question: str, *, lessons: int
    ) -> tuple[list[MemoryItem], list[MemoryItem]]:
        return [], []
