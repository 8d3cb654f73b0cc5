"""Servers that died mid-run: each `rlm serve` process records itself (an instance id,
its host and PID) and a heartbeat every `[server] heartbeat_s`. At start and at each
heartbeat a server marks the unfinished runs of servers not heard of for
`instance_stale_s` (or no longer recorded) as failed, "the server running it stopped",
so no run stays "running" forever; their events stay readable. The heartbeat also
takes the cancels asked of this server's runs through another replica.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import delete, select, update

from rlmrt.server.models import RunRecord, ServerInstance, utc_now
from rlmrt.server.run_events import Sessions
from rlmrt.server.storage import Store

log = logging.getLogger("rlmrt.server")

UNFINISHED = ("queued", "running")
SERVER_STOPPED = "the server running it stopped"
SERVER_ACTOR = "server"


def new_instance_id() -> str:
    return f"srv-{secrets.token_hex(8)}"


async def register(sessions: Sessions, instance_id: str) -> None:
    now = utc_now()
    async with sessions.begin() as session:
        session.add(
            ServerInstance(
                id=instance_id,
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=now,
                heartbeat_at=now,
            )
        )


async def heartbeat(sessions: Sessions, instance_id: str) -> None:
    """Say this server is alive (recorded again if a replica took it for dead)."""
    async with sessions.begin() as session:
        changed = await session.execute(
            update(ServerInstance)
            .where(ServerInstance.id == instance_id)
            .values(heartbeat_at=utc_now())
        )
    if getattr(changed, "rowcount", 1) == 0:
        await register(sessions, instance_id)


async def unregister(sessions: Sessions, instance_id: str) -> None:
    async with sessions.begin() as session:
        await session.execute(delete(ServerInstance).where(ServerInstance.id == instance_id))


async def fail_orphaned_runs(store: Store, stale_s: float) -> list[str]:
    """Mark the unfinished runs of dead servers failed (each once, also when several
    servers look at the same time), audited; the ids marked."""
    sessions = store.sessions
    since = utc_now() - timedelta(seconds=stale_s)
    async with sessions() as session:
        alive = select(ServerInstance.id).where(ServerInstance.heartbeat_at >= since)
        orphans = (
            await session.execute(
                select(RunRecord.id, RunRecord.tenant_id).where(
                    RunRecord.status.in_(UNFINISHED),
                    RunRecord.instance_id.is_not(None),
                    RunRecord.instance_id.not_in(alive),
                )
            )
        ).all()
    marked = []
    for run_id, tenant_id in orphans:
        async with sessions.begin() as session:
            changed = await session.execute(
                update(RunRecord)
                .where(RunRecord.id == run_id, RunRecord.status.in_(UNFINISHED))
                .values(
                    status="failed",
                    stop_reason="server_stopped",
                    error=SERVER_STOPPED,
                    finished_at=utc_now(),
                )
            )
        if getattr(changed, "rowcount", 0) == 1:
            marked.append(run_id)
            log.warning("run %s failed: %s", run_id, SERVER_STOPPED)
            await store.audit(
                "run.finish",
                actor=SERVER_ACTOR,
                tenant_id=tenant_id,
                target=run_id,
                detail={"status": "failed", "stop_reason": "server_stopped", "total_tokens": 0},
            )
    async with sessions.begin() as session:
        await session.execute(delete(ServerInstance).where(ServerInstance.heartbeat_at < since))
    return marked


async def cancels_asked(sessions: Sessions, instance_id: str) -> Sequence[str]:
    """The unfinished runs of this server whose cancel was asked of another replica."""
    async with sessions() as session:
        found = await session.scalars(
            select(RunRecord.id).where(
                RunRecord.instance_id == instance_id,
                RunRecord.cancel_requested.is_(True),
                RunRecord.status.in_(UNFINISHED),
            )
        )
        return found.all()


async def keep_alive(
    store: Store,
    instance_id: str,
    *,
    interval_s: float,
    stale_s: float,
    cancel: Callable[[str], object],
) -> None:
    """Forever: the heartbeat, the dead servers' runs, this server's asked cancels."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await heartbeat(store.sessions, instance_id)
            await fail_orphaned_runs(store, stale_s)
            for run_id in await cancels_asked(store.sessions, instance_id):
                cancel(run_id)
        except Exception:  # the database away for a moment: try again next time
            log.exception("the server's heartbeat failed")
