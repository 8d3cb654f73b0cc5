"""The tables: tenants, their API keys, their runs and the audit log (SQLAlchemy 2
declarative).

Their schema is made by the Alembic migrations in `migrations/versions`, never by
`create_all`: a change here comes with a new migration.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """A time in UTC; SQLite keeps no zone, so what it returns is read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=timezone.utc)


KeyState = Literal["active", "revoked", "expired"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # the tenant's own limits of all its keys together; None: the [server] default
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, default=None)
    daily_usd: Mapped[float | None] = mapped_column(Float, default=None)


class ApiKey(Base):
    """A key as stored: its visible prefix and its SHA-256, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # the key's own USD per UTC day; None: the [server] key_daily_usd default
    daily_usd: Mapped[float | None] = mapped_column(Float, default=None)

    def state(self, now: datetime | None = None) -> KeyState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utc_now()):
            return "expired"
        return "active"


class RunRecord(Base):
    """One run a tenant asked for (a completion or an async run): its status, usage and
    cost; an async run's answer or error too. `instance_id` is the server running it
    (a run of a dead server is marked failed: see `instances`)."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None, index=True)
    subject: Mapped[str | None] = mapped_column(String(255), default=None)  # a token's
    profile: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # running, completed, partial, failed, ...
    stop_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    kind: Mapped[str] = mapped_column(String(16), default="completion")  # or "run" (async)
    instance_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRecord(Base):
    """One entry of the audit log, chained to the one before it by `prev_hash` (see
    `rlmrt.server.audit`). Rows are only ever added."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40), index=True)  # ISO 8601, UTC
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(40))  # a key's visible prefix, or "cli"
    tenant_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    target: Mapped[str | None] = mapped_column(String(80), default=None)
    client: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class RunEvent(Base):
    """One event of a run, as its trajectory line (`Event.to_dict`), numbered from 1:
    what /v1/runs/{id}/events sends (resumed after a number) on any replica."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[str] = mapped_column(Text)  # JSON


class StoredFile(Base):
    """A file a tenant uploaded: its bytes are `ServerSettings.files_dir / id`."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), default=None)
    subject: Mapped[str | None] = mapped_column(String(255), default=None)  # a token's
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class ServerInstance(Base):
    """A running `rlm serve` process and when it was last heard of (its heartbeat)."""

    __tablename__ = "server_instances"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)


class MemoryRecord(Base):
    """An item of one tenant's memory (`rlmrt.server.memory`): what its runs' code
    remembered; no other tenant's run ever reads it."""

    __tablename__ = "memory_items"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    tags: Mapped[str] = mapped_column(Text, default="")  # space-separated
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    source_runs: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
