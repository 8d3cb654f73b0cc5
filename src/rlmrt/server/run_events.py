"""The events of async runs, kept in the database: written as the run emits them
(numbered from 1, in batches), read back by `/v1/runs/{id}/events` as server-sent
events on any replica, resumable after a number (`Last-Event-ID`), even once the run
has ended or its server died; and by `/v1/runs/{id}/trajectory` as one JSON document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence

import anyio
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rlmrt.events import Event
from rlmrt.observe.trajectory import event_json
from rlmrt.server.models import RunEvent, RunRecord
from rlmrt.server.redact import redacted

FLUSH_S = 0.1  # how often a run's new events are written
POLL_S = 0.2  # how often a stream looks for new events
BATCH = 500
ENDED = frozenset({"completed", "partial", "failed", "cancelled"})

Sessions = async_sessionmaker[AsyncSession]


class EventRecorder:
    """The event handler of one run: numbers its events and writes them in batches
    (`run` drives the writing; `close` writes the last ones)."""

    def __init__(self, sessions: Sessions, run_id: str, secrets: Sequence[str] = ()) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.secrets = secrets  # replaced in each event (see `redact`)
        self._pending: list[dict[str, object]] = []
        self._seq = 0
        self._closed = asyncio.Event()
        self._writing = asyncio.Lock()  # one batch at a time: `run`'s or `close`'s

    def __call__(self, event: Event) -> None:
        self._seq += 1
        self._pending.append(
            {
                "run_id": self.run_id,
                "seq": self._seq,
                "kind": event.kind,
                "data": redacted(event_json(event), self.secrets),
            }
        )

    async def run(self) -> None:
        """Write what arrived every `FLUSH_S` until closed."""
        while not self._closed.is_set():
            await self._flush()
            # asyncio's own TimeoutError: on Python 3.10 it is not the builtin one
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), FLUSH_S)

    async def close(self) -> None:
        self._closed.set()
        with anyio.CancelScope(shield=True):
            await self._flush()

    async def _flush(self) -> None:
        async with self._writing:
            while self._pending:
                batch = self._pending[:BATCH]
                async with self.sessions.begin() as session:
                    await session.execute(insert(RunEvent), batch)
                del self._pending[: len(batch)]


async def events_after(
    sessions: Sessions, run_id: str, after: int, limit: int = BATCH
) -> Sequence[RunEvent]:
    async with sessions() as session:
        found = await session.scalars(
            select(RunEvent)
            .where(RunEvent.run_id == run_id, RunEvent.seq > after)
            .order_by(RunEvent.seq)
            .limit(limit)
        )
        return found.all()


async def run_status(sessions: Sessions, run_id: str) -> str | None:
    async with sessions() as session:
        status = await session.scalar(select(RunRecord.status).where(RunRecord.id == run_id))
    return status


async def event_stream(
    sessions: Sessions, run_id: str, after: int, keepalive_s: float
) -> AsyncIterator[str]:
    """The run's events after number `after` as SSE messages (`id:` the number, `event:`
    the kind, `data:` the event's JSON), then an `end` event once the run has ended;
    a keep-alive comment when nothing was sent for `keepalive_s`."""
    last_sent = time.monotonic()
    while True:
        status = await run_status(sessions, run_id)  # before the events: none is missed
        rows = await events_after(sessions, run_id, after)
        for row in rows:
            yield f"id: {row.seq}\nevent: {row.kind}\ndata: {row.data}\n\n"
            after = row.seq
        if rows:
            last_sent = time.monotonic()
            continue
        if status is None or status in ENDED:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        if time.monotonic() - last_sent >= keepalive_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(min(POLL_S, keepalive_s))


async def trajectory_document(sessions: Sessions, run_id: str, head: str) -> AsyncIterator[str]:
    """`head` (a JSON object's start, up to its `"events": [`), the run's events in
    batches, and the end: the trajectory as one JSON document, never whole in memory."""
    yield head
    after, first = 0, True
    while rows := await events_after(sessions, run_id, after):
        for row in rows:
            yield row.data if first else "," + row.data
            first = False
            after = row.seq
    yield "]}"
