"""Each tenant's memory, in the server's database (SQLite or PostgreSQL): the backend a
server run's `memory.*` calls and first-prompt recall reach, keyed by the caller's
tenant, so one tenant's runs never see another's items.

Search is portable SQL: the items holding any word of the query (case-insensitive),
ranked by how many of its words they hold, then newest first. Each call is one
`Store.transaction` (on a SQLite file: one hop to a worker thread, not one per
statement and fetch; a run's first prompt reads the pinned items and the lessons).
Text only: `[memory] embedding_model` ranks the project store (`FileMemory`), not this."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import BindParameter, Select, bindparam, delete, func, or_, select
from sqlalchemy.orm import Session

from rlmrt.context.local_index import fts_query
from rlmrt.memory.store import (
    MemoryItem,
    MemoryKind,
    checked_k,
    checked_kind,
    checked_tags,
    checked_text,
)
from rlmrt.server.models import MemoryRecord, utc_now
from rlmrt.server.storage import Store

MAX_TERMS = 32
CANDIDATES = 500  # the newest matching items ranked for one recall

_WORD = re.compile(r"\w+")


class TenantMemory:
    """The memory of tenant `tenant_id` in the database of `store`."""

    def __init__(self, store: Store, tenant_id: str) -> None:
        self._store = store
        self.tenant_id = tenant_id

    async def remember(self, text: str, *, tags: Sequence[str], pinned: bool) -> MemoryItem:
        record = MemoryRecord(
            id=f"mem-{secrets.token_hex(6)}",
            tenant_id=self.tenant_id,
            text=checked_text(text),
            kind="fact",
            tags=" ".join(checked_tags(tags)),
            pinned=bool(pinned),
            source_runs="[]",
            created_at=utc_now(),
        )
        await self._store.transaction(lambda session: session.add(record))
        return _item(record)

    async def recall(
        self, query: str, *, k: int = 5, kind: MemoryKind | None = None
    ) -> list[MemoryItem]:
        checked_k(k)
        search = self._search(query, kind)
        if search is None:
            return []
        return await self._store.transaction(lambda session: search.found(session, k))

    async def forget(self, item_id: str) -> bool:
        gone = delete(MemoryRecord).where(
            MemoryRecord.tenant_id == self.tenant_id, MemoryRecord.id == item_id
        )

        def delete_item(session: Session) -> bool:
            return bool(getattr(session.execute(gone), "rowcount", 0))

        return await self._store.transaction(delete_item)

    async def pinned(self) -> list[MemoryItem]:
        return await self._store.transaction(self._pinned)

    async def for_prompt(
        self, question: str, *, lessons: int
    ) -> tuple[list[MemoryItem], list[MemoryItem]]:
        """The pinned items and the lessons `question` finds, in one transaction."""
        search = self._search(question, "lesson") if lessons else None

        def read(session: Session) -> tuple[list[MemoryItem], list[MemoryItem]]:
            found = search.found(session, lessons) if search is not None else []
            return self._pinned(session), found

        return await self._store.transaction(read)

    def _pinned(self, session: Session) -> list[MemoryItem]:
        found = session.scalars(_PINNED, {"tenant": self.tenant_id})
        return [_item(record) for record in found]

    def _search(self, query: str, kind: MemoryKind | None) -> _Search | None:
        """The search for `query`'s words (None: it has none; an empty query is an
        error)."""
        if fts_query(query) is None:
            return None
        terms = list(dict.fromkeys(_WORD.findall(query.lower())))[:MAX_TERMS]
        params: dict[str, str] = {"tenant": self.tenant_id}
        for index, term in enumerate(terms):  # a word's only LIKE wildcard is "_"
            params[f"term{index}"] = "%" + term.replace("/", "//").replace("_", "/_") + "%"
        if kind is not None:
            params["kind"] = checked_kind(kind)
        return _Search(_search_query(len(terms), kind is not None), params, terms)


_PINNED = (
    select(MemoryRecord)
    .where(MemoryRecord.tenant_id == bindparam("tenant"), MemoryRecord.pinned)
    .order_by(MemoryRecord.created_at)
)


@lru_cache(maxsize=2 * MAX_TERMS)
def _search_query(terms: int, of_kind: bool) -> Select[MemoryRecord]:
    """The search of `terms` words (`term0`...; "kind" when `of_kind`), made once per
    shape: a statement made per call cost more than the read."""
    text, tags = func.lower(MemoryRecord.text), func.lower(MemoryRecord.tags)
    words: list[BindParameter[str]] = [bindparam(f"term{index}") for index in range(terms)]
    found = (
        select(MemoryRecord)
        .where(MemoryRecord.tenant_id == bindparam("tenant"))
        .where(
            or_(
                *(text.like(word, escape="/") for word in words),
                *(tags.like(word, escape="/") for word in words),
            )
        )
        .order_by(MemoryRecord.created_at.desc())
        .limit(CANDIDATES)
    )
    return found.where(MemoryRecord.kind == bindparam("kind")) if of_kind else found


@dataclass(frozen=True, slots=True)
class _Search:
    """The newest items holding any of `terms`, ranked by how many they hold."""

    query: Select[MemoryRecord]
    params: dict[str, str]
    terms: list[str]

    def found(self, session: Session, k: int) -> list[MemoryItem]:
        records = list(session.scalars(self.query, self.params))

        def hits(record: MemoryRecord) -> int:
            words = f"{record.text} {record.tags}".lower()
            return sum(term in words for term in self.terms)

        records.sort(key=hits, reverse=True)  # stable: newest first among equals
        return [_item(record) for record in records[:k]]


def _item(record: MemoryRecord) -> MemoryItem:
    return MemoryItem(
        id=record.id,
        text=record.text,
        kind=checked_kind(record.kind),
        tags=record.tags.split(),
        pinned=record.pinned,
        created=record.created_at.isoformat(timespec="microseconds"),
        source_runs=json.loads(record.source_runs),
    )
