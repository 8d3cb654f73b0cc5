"""Each tenant's memory in the server's database (SQLite and PostgreSQL): found by its
words, pinned items listed oldest first, and never another tenant's, to read or forget."""

from __future__ import annotations

import pytest

from rlmrt.errors import ConfigError
from rlmrt.server.memory import TenantMemory
from rlmrt.server.models import MemoryRecord, utc_now
from rlmrt.server.storage import Store


async def test_a_tenant_recalls_and_forgets_only_its_own(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        acme_id = (await store.create_tenant("acme")).id
        beta_id = (await store.create_tenant("beta")).id
        acme = TenantMemory(store, acme_id)
        beta = TenantMemory(store, beta_id)
        first = await acme.remember("invoices are pipe-separated", tags=["ledger"], pinned=True)
        await acme.remember("the ledger total is in the last column", tags=[], pinned=False)
        theirs = await beta.remember("beta's ledger is CSV", tags=["ledger"], pinned=True)

        found = await acme.recall("ledger total column")
        # ranked by how many of the query's words an item holds
        assert [i.text for i in found] == [
            "the ledger total is in the last column",
            "invoices are pipe-separated",  # by its tag
        ]
        assert [i.text for i in await acme.recall("LEDGER", k=1)] == [
            "the ledger total is in the last column"  # newest among equals
        ]
        assert [i.id for i in await acme.pinned()] == [first.id]
        assert [i.text for i in await beta.recall("ledger invoices pipe")] == [theirs.text]
        assert await acme.recall("ledger", kind="lesson") == []
        assert await acme.recall("%% -- !") == []  # no words: nothing, and no LIKE pattern
        snake = await beta.remember("the column is net_total", tags=[], pinned=False)
        await beta.remember("the column is netXtotal", tags=[], pinned=False)
        # "_" in a word is a letter, not LIKE's wildcard
        assert [i.id for i in await beta.recall("net_total")] == [snake.id]
        with pytest.raises(ConfigError, match="empty"):
            await acme.recall("   ")

        # a first prompt's read, in one transaction: the tenant's pinned items and lessons
        lesson = MemoryRecord(
            id="mem-lesson",
            tenant_id=acme_id,
            text="ledger totals: sum the last column",
            kind="lesson",
            tags="",
            pinned=False,
            source_runs="[]",
            created_at=utc_now(),
        )
        await store.transaction(lambda session: session.add(lesson))
        pinned, lessons = await acme.for_prompt("what is the ledger total?", lessons=3)
        assert [i.id for i in pinned] == [first.id]
        assert [i.id for i in lessons] == ["mem-lesson"]
        assert (await acme.for_prompt("ledger", lessons=0))[1] == []
        pinned, lessons = await beta.for_prompt("what is the ledger total?", lessons=3)
        assert ([i.id for i in pinned], lessons) == ([theirs.id], [])

        assert not await acme.forget(theirs.id)  # beta's item is not acme's to forget
        assert [i.id for i in await beta.pinned()] == [theirs.id]
        assert await acme.forget(first.id) and not await acme.forget(first.id)
        assert await acme.pinned() == []
        with pytest.raises(ConfigError, match="k must be"):
            await acme.recall("ledger", k=0)
        with pytest.raises(ConfigError, match="non-empty"):
            await acme.remember(" ", tags=[], pinned=False)
    finally:
        await store.aclose()
