"""Where a run's memory lives, as the engine reaches it: the project's SQLite store
(`FileMemory`, the default) or another store keyed by its owner (the API server keeps
each tenant's in its own database, `rlmrt.server.memory`).

The engine only remembers, recalls, forgets and lists pinned items; the CLI's `rlm
memory` commands and learning work on the project's `MemoryStore` itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rlmrt.errors import ConfigError, ModelError
from rlmrt.llm.embeddings import cosine, embed
from rlmrt.memory.store import Embedding, MemoryItem, MemoryKind, MemoryStore, checked_k

if TYPE_CHECKING:
    from rlmrt.config import MemorySettings

logger = logging.getLogger(__name__)


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
    and runs of one project in other processes see each other's items at once).

    With `settings.embedding_model` set, each remembered text is stored with its
    embedding, and `recall`/`for_prompt` rank by cosine similarity to the query's: the
    items with a vector from that model, most similar first (those at or below 0 left
    out), then the full-text hits not already listed (items stored without a vector or
    by another model). When the embedding call fails, a warning names the endpoint and
    the full-text search answers alone; an item whose embedding failed is stored
    without one."""

    def __init__(self, path: Path, *, settings: MemorySettings | None = None) -> None:
        self.path = path
        self.settings = settings

    async def remember(self, text: str, *, tags: Sequence[str], pinned: bool) -> MemoryItem:
        embedding = None
        vector = await self._embedded(text, "stores this item without a vector")
        if vector is not None:
            assert self.settings is not None and self.settings.embedding_model is not None
            embedding = Embedding(self.settings.embedding_model, vector)

        def write() -> MemoryItem:
            with MemoryStore(self.path) as store:
                return store.remember(text, tags=tags, pinned=pinned, embedding=embedding)

        return await asyncio.to_thread(write)

    async def recall(
        self, query: str, *, k: int = 5, kind: MemoryKind | None = None
    ) -> list[MemoryItem]:
        checked_k(k)
        # an absent store has nothing to rank: no embedding call
        vector = (
            await self._embedded(query, "recalls by full-text search")
            if self.path.exists()
            else None
        )

        def read() -> list[MemoryItem]:
            with MemoryStore(self.path) as store:
                return self._ranked(store, query, vector, k=k, kind=kind)

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
        vector = (
            await self._embedded(question, "ranks lessons by full-text search")
            if lessons and self.path.exists()
            else None
        )

        def read() -> tuple[list[MemoryItem], list[MemoryItem]]:
            with MemoryStore(self.path) as store:
                pinned = store.items(pinned=True)
                found = (
                    self._ranked(store, question, vector, k=lessons, kind="lesson")
                    if lessons
                    else []
                )
                return pinned, found

        return await asyncio.to_thread(read)

    async def _embedded(self, text: str, fallback: str) -> list[float] | None:
        """`text`'s vector, or None when no embedding model is set or the call failed
        (logged with what the memory does instead)."""
        if self.settings is None or not self.settings.embedding_model or not text.strip():
            return None
        try:
            return (await embed([text], self.settings))[0]
        except ModelError as exc:
            logger.warning("memory embedding failed: %s; the memory %s", exc, fallback)
            return None

    def _ranked(
        self,
        store: MemoryStore,
        query: str,
        vector: list[float] | None,
        *,
        k: int,
        kind: MemoryKind | None,
    ) -> list[MemoryItem]:
        if vector is None or self.settings is None or not self.settings.embedding_model:
            return store.recall(query, k=k, kind=kind)
        scored = [
            (score, item)
            for item, stored in store.embedded(self.settings.embedding_model, kind=kind)
            if len(stored) == len(vector) and (score := cosine(vector, stored)) > 0
        ]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        found = [item for _, item in scored[:k]]
        seen = {item.id for item in found}
        for item in store.recall(query, k=k, kind=kind):
            if len(found) >= k:
                break
            if item.id not in seen:
                found.append(item)
                seen.add(item.id)
        return found


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
