"""The server's database: tenants, their keys, their runs and the audit log.

`Store.open` connects (SQLAlchemy async; SQLite by default, any async URL in
`[server] database_url`) and applies the Alembic migrations shipped in `migrations/`
before anything else reads it. Raw keys never reach this module's tables: `create_key`
returns the key once and stores its hash (see `keys`). Changes of tenants and keys are
audited here (actor "cli": they are made by `rlm tenants` and `rlm keys`).

The reads and writes of every request (the key with its tenant, a run's start and end
with their audit records, the tenant's memory a run recalls: `server.memory`) are
written once, as a function of a sync `Session`
(`Store.transaction`). On a SQLite file it runs whole in a worker thread on the
standard `sqlite3` driver: one hop off the event loop per transaction, where aiosqlite
makes one per statement, fetch, commit and cursor close (about 12 for a run's start;
measured in bench/README.md). On any other database (PostgreSQL) the async session runs
the same function (`run_sync`).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from rlmrt.errors import ConfigError, UsageError
from rlmrt.observe.usage import Usage
from rlmrt.server.audit import (
    CLI_ACTOR,
    GENESIS,
    ChainBreak,
    Entry,
    detail_text,
    first_break,
    sealed,
)
from rlmrt.server.keys import key_hash, key_prefix, looks_like_key, new_key, same_hash
from rlmrt.server.models import ApiKey, AuditRecord, Base, RunRecord, Tenant, utc_now

if TYPE_CHECKING:
    from rlmrt.server.auth import Caller

MIGRATIONS = Path(__file__).with_name("migrations")
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
TENANT_LIMITS = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "daily_usd")
APPEND_TRIES = 20  # another process appended at the same place: read the end again
AUDIT_APPEND_LOCK = 0x726C6D5F61756474  # PostgreSQL advisory lock ids: audit appends,
MIGRATE_LOCK = 0x726C6D5F6D696772  # and migrations
SQLITE_BUSY_MS = 5000  # a writer waits this long for another (a replica, the CLI)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Spent:
    """USD spent by one key and by its whole tenant."""

    key_usd: float
    tenant_usd: float


class Store:
    """Tenants, keys and runs in one database. Open with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine, *, sqlite_file: Engine | None = None) -> None:
        """`sqlite_file`: a sync engine on the same SQLite file, which runs the
        transactions of `transaction` in a worker thread (None: the async session)."""
        self.engine = engine
        self._session = async_sessionmaker(engine, expire_on_commit=False)
        self.sessions = self._session  # for the stores of files and runs beside this one
        self._sqlite_file = sqlite_file
        self._append_lock = asyncio.Lock()  # one chain: appends of this process in turn

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect to `url` and bring its schema to the latest migration."""
        shown = _shown_url(url)
        try:
            parsed = make_url(url)
            sqlite_file = _sqlite_file(parsed.get_backend_name(), parsed.database)
            engine = create_async_engine(parsed)
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            raise ConfigError(f"server.database_url {shown}: {exc}") from exc
        if sqlite_file is not None:
            try:
                sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                await engine.dispose()
                raise ConfigError(
                    f"cannot open the server database {shown}: its folder: {exc.strerror}"
                ) from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            async with engine.begin() as connection:
                if engine.dialect.name == "postgresql":  # replicas starting together:
                    # one migrates (PostgreSQL's DDL is transactional), the rest wait
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": MIGRATE_LOCK}
                    )
                await connection.run_sync(_upgrade)
        except OperationalError as exc:
            await engine.dispose()
            raise ConfigError(f"cannot open the server database {shown}: {exc.orig}") from exc
        if sqlite_file is None:
            return cls(engine)
        os.chmod(sqlite_file, 0o600)  # key hashes and usage: the owner's only
        return cls(engine, sqlite_file=_sync_sqlite_engine(parsed))

    async def aclose(self) -> None:
        await self.engine.dispose()
        if self._sqlite_file is not None:
            self._sqlite_file.dispose()

    async def transaction(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, committed when it returns (rolled back when it
        raises): on a SQLite file in a worker thread, else in the async session."""
        if self._sqlite_file is not None:
            return await anyio.to_thread.run_sync(_in_session, self._sqlite_file, work)
        async with self._session.begin() as session:
            return await session.run_sync(work)

    async def ping(self) -> None:
        """Raises when the database does not answer."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    # -- tenants ---------------------------------------------------------------------
    async def create_tenant(self, name: str, **limits: float | None) -> Tenant:
        """Add tenant `name`, with its own limits (`TENANT_LIMITS` keywords) if given."""
        _check_limits(limits)
        if TENANT_NAME.fullmatch(name) is None:
            raise UsageError(
                f"tenant name {name!r}: use 1-64 letters, digits, '.', '_' or '-',"
                " starting with a letter or digit"
            )
        async with self._session.begin() as session:
            found = await session.scalar(select(Tenant).where(Tenant.name == name))
            if found is not None:
                raise UsageError(f"tenant {name!r} exists already")
            tenant = Tenant(id=_new_id("ten"), name=name, created_at=utc_now(), **limits)
            session.add(tenant)
        await self.audit("tenant.create", tenant_id=tenant.id, target=name, detail=_given(limits))
        return tenant

    async def set_tenant_limits(self, name: str, **limits: float | None) -> Tenant:
        """Set the tenant's own limits (`TENANT_LIMITS` keywords; None: back to the
        [server] default); the ones not given stay."""
        _check_limits(limits)
        tenant = await self.tenant(name)
        async with self._session.begin() as session:
            stored = await session.get(Tenant, tenant.id)
            assert stored is not None
            for field, value in limits.items():
                setattr(stored, field, value)
        await self.audit("tenant.limits", tenant_id=tenant.id, target=name, detail=limits)
        return stored

    async def tenants(self) -> Sequence[Tenant]:
        async with self._session() as session:
            return (await session.scalars(select(Tenant).order_by(Tenant.name))).all()

    async def tenant(self, name: str) -> Tenant:
        async with self._session() as session:
            found = await session.scalar(select(Tenant).where(Tenant.name == name))
            if found is not None:
                return found
            names = (await session.scalars(select(Tenant.name).order_by(Tenant.name))).all()
        raise UsageError(
            f"no tenant {name!r} (tenants: {', '.join(names) or 'none yet'});"
            f" create it with: rlm tenants create {name}"
        )

    # -- keys ------------------------------------------------------------------------
    async def create_key(
        self,
        tenant_name: str,
        *,
        expires_in: timedelta | None = None,
        daily_usd: float | None = None,
    ) -> tuple[str, ApiKey]:
        """A new key of the tenant: the key itself (to show once) and what is stored.
        `daily_usd`: its own budget per UTC day (None: the [server] default)."""
        _check_limits({"daily_usd": daily_usd})
        tenant = await self.tenant(tenant_name)
        raw = new_key()
        now = utc_now()
        key = ApiKey(
            id=_new_id("key"),
            tenant_id=tenant.id,
            prefix=key_prefix(raw),
            key_hash=key_hash(raw),
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            daily_usd=daily_usd,
        )
        async with self._session.begin() as session:
            session.add(key)
        detail = {
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            **_given({"daily_usd": daily_usd}),
        }
        await self.audit("key.create", tenant_id=tenant.id, target=key.prefix, detail=detail)
        return raw, key

    async def keys(self, tenant_name: str | None = None) -> list[tuple[ApiKey, str]]:
        """Keys and their tenant's name, oldest first."""
        query = select(ApiKey, Tenant.name).join(Tenant, ApiKey.tenant_id == Tenant.id)
        if tenant_name is not None:
            query = query.where(Tenant.id == (await self.tenant(tenant_name)).id)
        async with self._session() as session:
            rows = (await session.execute(query.order_by(ApiKey.created_at))).all()
        return [(key, name) for key, name in rows]

    async def revoke_key(self, ref: str) -> ApiKey:
        """Revoke the key `ref` names: its id, its visible prefix or the key itself."""
        async with self._session.begin() as session:
            if looks_like_key(ref):
                where: Any = ApiKey.key_hash == key_hash(ref)
            else:
                where = (ApiKey.id == ref) | (ApiKey.prefix == ref)
            found = (await session.scalars(select(ApiKey).where(where))).all()
            if not found:
                raise UsageError(f"no key {ref!r}: give a key id or prefix from `rlm keys list`")
            if len(found) > 1:
                raise UsageError(f"{ref!r} names {len(found)} keys: give the key id")
            key = found[0]
            already = key.revoked_at is not None
            if not already:
                key.revoked_at = utc_now()
        if not already:
            await self.audit("key.revoke", tenant_id=key.tenant_id, target=key.prefix)
        return key

    async def find_key(self, raw: str) -> tuple[ApiKey, Tenant] | None:
        """The stored key `raw` is, whatever its state (revoked, expired), and its tenant,
        in one read: candidates are found by the visible prefix, then their hashes
        compared in constant time."""
        if not looks_like_key(raw):
            return None

        def read(session: Session) -> list[tuple[ApiKey, Tenant]]:
            candidates = session.execute(_KEYS_BY_PREFIX, {"prefix": key_prefix(raw)})
            return [(key, tenant) for key, tenant in candidates if same_hash(key.key_hash, raw)]

        matches = await self.transaction(read)
        return matches[0] if matches else None

    async def usable_keys(self, now: datetime | None = None) -> int:
        """Keys neither revoked nor expired."""
        now = now or utc_now()
        query = (
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.revoked_at.is_(None))
            .where(ApiKey.expires_at.is_(None) | (ApiKey.expires_at > now))
        )
        async with self._session() as session:
            return int(await session.scalar(query) or 0)

    # -- runs ------------------------------------------------------------------------
    async def start_run(
        self,
        run_id: str,
        *,
        caller: Caller,
        profile: str,
        kind: str = "completion",
        instance_id: str | None = None,
        audited: Entry | None = None,
    ) -> None:
        """Record the run as running; with `audited`, that record is appended to the
        audit log in the same transaction (one commit, not two)."""
        row = {
            "id": run_id,
            "tenant_id": caller.tenant_id,
            "key_id": caller.key_id,
            "subject": caller.subject,
            "profile": profile,
            "status": "running",
            "created_at": utc_now(),
            "kind": kind,
            "instance_id": instance_id,
        }  # the other columns: their defaults (no tokens, no cost, no answer)

        def insert(session: Session) -> None:
            session.execute(_INSERT_RUN, row)

        if audited is None:
            await self.transaction(insert)
        else:
            await self._append(audited, along=insert)

    async def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        usage: Usage | None,
        audited: Entry | None = None,
    ) -> None:
        """Record how the run ended; with `audited`, in the transaction that appends
        that record to the audit log."""

        ended: dict[str, Any] = {
            "run": run_id,
            "status": status,
            "stop_reason": stop_reason,
            "finished_at": utc_now(),
        }
        if usage is not None:
            ended.update(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                model_calls=usage.model_calls,
                cost_usd=usage.cost_usd,
            )

        def update(session: Session) -> None:
            session.execute(_END_RUN, ended)  # no such run: no row changed

        if audited is None:
            await self.transaction(update)
        else:
            await self._append(audited, along=update)

    async def spent_since(self, since: datetime, *, key_id: str, tenant_id: str) -> Spent:
        """USD the runs started from `since` on spent, of the key and of its tenant (a
        run's cost is recorded when it ends)."""
        since_filter = RunRecord.created_at >= since
        cost = func.coalesce(func.sum(RunRecord.cost_usd), 0.0)
        async with self._session() as session:
            key = await session.scalar(
                select(cost).where(since_filter).where(RunRecord.key_id == key_id)
            )
            tenant = await session.scalar(
                select(cost).where(since_filter).where(RunRecord.tenant_id == tenant_id)
            )
        return Spent(key_usd=float(key or 0.0), tenant_usd=float(tenant or 0.0))

    async def runs(self, tenant_name: str | None = None) -> Sequence[RunRecord]:
        """Runs, newest first."""
        query = select(RunRecord)
        if tenant_name is not None:
            query = query.where(RunRecord.tenant_id == (await self.tenant(tenant_name)).id)
        async with self._session() as session:
            return (await session.scalars(query.order_by(RunRecord.created_at.desc()))).all()

    # -- the audit log ---------------------------------------------------------------
    async def audit(
        self,
        action: str,
        *,
        actor: str = CLI_ACTOR,
        tenant_id: str | None = None,
        target: str | None = None,
        client: str | None = None,
        detail: Mapping[str, object] | None = None,
    ) -> AuditRecord:
        """Append a record to the chain. Appends are serialized: in this process by a
        lock; across processes (replicas, the CLI beside the server) on PostgreSQL by a
        transaction-level advisory lock taken before the chain's end is read, and on
        any database by the unique previous hash, so two appends after the same record
        cannot both be stored: the loser retries."""
        return await self._append(
            Entry(action, actor, tenant_id=tenant_id, target=target, client=client, detail=detail)
        )

    async def _append(
        self, entry: Entry, *, along: Callable[[Session], None] | None = None
    ) -> AuditRecord:
        """Append `entry` (see `audit`); `along` writes in the same transaction, so
        both are stored or neither (a retry runs it again: the transaction that lost
        was rolled back whole; `along`'s own integrity errors are raised, not retried)."""
        postgresql = self.engine.dialect.name == "postgresql"
        async with self._append_lock:
            for _ in range(APPEND_TRIES):
                appending = along is None

                def append(session: Session) -> AuditRecord:
                    nonlocal appending
                    if along is not None:
                        along(session)
                        session.flush()
                        appending = True
                    return _append_record(session, entry, postgresql=postgresql)

                try:
                    return await self.transaction(append)
                except (IntegrityError, OperationalError) as exc:
                    if not appending and isinstance(exc, IntegrityError):
                        raise
                    await asyncio.sleep(0.01)  # another process appended first
        raise RuntimeError(f"the audit log stayed busy for {APPEND_TRIES} tries")

    async def audit_records(
        self, *, tenant_name: str | None = None, since: datetime | None = None
    ) -> Sequence[AuditRecord]:
        """The records in their order, optionally of one tenant and from a time on."""
        query = select(AuditRecord)
        if tenant_name is not None:
            query = query.where(AuditRecord.tenant_id == (await self.tenant(tenant_name)).id)
        if since is not None:
            query = query.where(AuditRecord.at >= since.isoformat())
        async with self._session() as session:
            return (await session.scalars(query.order_by(AuditRecord.seq))).all()

    async def verify_audit(self) -> tuple[int, ChainBreak | None]:
        """How many records there are and the first that breaks the chain (None: intact)."""
        return first_break(await self.audit_records())


# The statements of every request, made once (a statement made per call costs more
# than its read or write)
_KEYS_BY_PREFIX = (
    select(ApiKey, Tenant)
    .join(Tenant, ApiKey.tenant_id == Tenant.id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
_CHAIN_END = select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
# Rows written as Core statements, not through the ORM's unit of work (its flush cost
# more than the writes)
_AUDIT_TABLE = Base.metadata.tables[AuditRecord.__tablename__]
_RUNS_TABLE = Base.metadata.tables[RunRecord.__tablename__]
_INSERT_AUDIT = insert(_AUDIT_TABLE)
_AUDIT_COLUMNS = tuple(column.key for column in _AUDIT_TABLE.columns)
_INSERT_RUN = insert(_RUNS_TABLE)
_END_RUN = update(_RUNS_TABLE).where(_RUNS_TABLE.c.id == bindparam("run"))


def _append_record(session: Session, entry: Entry, *, postgresql: bool) -> AuditRecord:
    """`entry` added to `session` as the record after the chain's end (read here; on
    PostgreSQL after taking the appends' advisory lock, held to the commit)."""
    if postgresql:
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": AUDIT_APPEND_LOCK})
    last = session.execute(_CHAIN_END).first()
    record = sealed(
        AuditRecord(
            seq=1 if last is None else last.seq + 1,
            at=utc_now().isoformat(),
            action=entry.action,
            actor=entry.actor,
            tenant_id=entry.tenant_id,
            target=entry.target,
            client=entry.client,
            detail=detail_text(entry.detail),
            prev_hash=GENESIS if last is None else last.hash,
        )
    )
    session.execute(_INSERT_AUDIT, {name: getattr(record, name) for name in _AUDIT_COLUMNS})
    return record


def _in_session(engine: Engine, work: Callable[[Session], T]) -> T:
    """`work` in one transaction of a new session of `engine` (see `Store.transaction`)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return work(session)


def _sync_sqlite_engine(url: URL) -> Engine:
    """A sync engine (the standard `sqlite3` driver) on the SQLite file of `url`, with
    the same pragmas as the async one."""
    engine = create_engine(url.set(drivername="sqlite"))
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _check_limits(limits: Mapping[str, float | None]) -> None:
    for field, value in limits.items():
        if field not in TENANT_LIMITS:
            raise TypeError(f"no tenant limit {field!r}")
        if value is not None and value < 0:
            raise UsageError(f"{field.replace('_', ' ')}: {value} is negative (0: no limit)")


def _given(limits: Mapping[str, float | None]) -> dict[str, float]:
    return {field: value for field, value in limits.items() if value is not None}


def _sqlite_file(backend: str, database: str | None) -> Path | None:
    """The file of a SQLite database (None: another database, or SQLite in memory)."""
    if backend != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def _new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(not a database URL)"


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # the CLI writes keys while the server reads
    # in WAL, NORMAL syncs at checkpoints, not at every commit: a commit survives a
    # crash of the process, and the database stays consistent when power fails
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
