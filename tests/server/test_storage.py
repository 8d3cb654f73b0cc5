"""The server's database: migrated at open, keys found by prefix and hash only."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from rlmrt.errors import ConfigError, UsageError
from rlmrt.observe.usage import Usage
from rlmrt.server.auth import Caller
from rlmrt.server.keys import key_hash, parse_duration
from rlmrt.server.models import utc_now
from rlmrt.server.storage import Spent, Store

HEAD = "0006"  # the newest migration


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_open_applies_the_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "server.db"
    store = await Store.open(url(path))
    await store.create_tenant("acme")
    await store.aclose()
    store = await Store.open(url(path))  # again: nothing to migrate, the data stays
    assert [t.name for t in await store.tenants()] == ["acme"]
    await store.ping()
    await store.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tenants", "api_keys", "runs", "audit_log", "files", "run_events"} <= tables
    assert "server_instances" in tables


async def test_keys_are_found_by_the_whole_key_only(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.create_tenant("acme")
        raw, key = await store.create_key("acme")
        assert key.key_hash == key_hash(raw) and raw.startswith(key.prefix)
        found = await store.find_key(raw)
        assert found is not None and found[0].id == key.id and found[1].name == "acme"
        assert await store.find_key(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
        assert await store.find_key(key.prefix) is None
        assert await store.find_key("sk-" + raw) is None
        assert await store.usable_keys() == 1
        _, short = await store.create_key("acme", expires_in=timedelta(seconds=1))
        assert short.expires_at is not None
        assert await store.usable_keys(now=short.expires_at + timedelta(seconds=1)) == 1
        await store.revoke_key(raw)
        assert await store.usable_keys() == 1  # the short one, for its second
        with pytest.raises(UsageError, match="no key"):
            await store.revoke_key("key_nothing")
    finally:
        await store.aclose()


async def test_open_migrates_either_database_once(database_url: str) -> None:
    """SQLite and PostgreSQL: the migrations make the tables, a second open keeps the data."""
    store = await Store.open(database_url)
    await store.create_tenant("acme", max_concurrent=2)
    await store.aclose()
    store = await Store.open(database_url)
    try:
        (tenant,) = await store.tenants()
        assert (tenant.name, tenant.max_concurrent) == ("acme", 2)
        async with store.engine.connect() as connection:
            version = await connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.all() == [(HEAD,)]
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"tenants", "api_keys", "runs", "audit_log"} <= set(tables)
    finally:
        await store.aclose()


async def test_spending_of_the_day_by_key_and_tenant(database_url: str) -> None:
    """What runs started from a time on cost, of one key and of its whole tenant."""
    store = await Store.open(database_url)
    try:
        acme = await store.create_tenant("acme")
        beta = await store.create_tenant("beta")
        _, first = await store.create_key("acme", daily_usd=1.5)
        _, second = await store.create_key("acme")
        _, other = await store.create_key("beta")
        assert (first.daily_usd, second.daily_usd) == (1.5, None)
        start = utc_now()
        ran = [("r1", first, acme, 0.25), ("r2", second, acme, 0.5), ("r3", other, beta, 4.0)]
        for run_id, key, tenant, cost in ran:
            await store.start_run(run_id, caller=Caller.of_key(key, tenant), profile="rlm")
            await store.finish_run(
                run_id, status="completed", stop_reason="final", usage=Usage(cost_usd=cost)
            )
        await store.start_run(
            "r4", caller=Caller.of_key(first, acme), profile="rlm"
        )  # under way: no cost yet
        spent = await store.spent_since(start, key_id=first.id, tenant_id=first.tenant_id)
        assert spent == Spent(key_usd=0.25, tenant_usd=0.75)
        later = await store.spent_since(
            utc_now() + timedelta(seconds=1), key_id=first.id, tenant_id=first.tenant_id
        )
        assert later == Spent(key_usd=0.0, tenant_usd=0.0)
        with pytest.raises(UsageError, match="daily usd: -1 is negative"):
            await store.create_key("acme", daily_usd=-1)
    finally:
        await store.aclose()


async def test_bad_urls_name_the_setting_and_hide_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server.database_url .*\*\*\*") as raised:
        await Store.open("postgresql+nosuchdriver://u:hunter2@127.0.0.1/db")
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ConfigError, match="not a database URL"):
        await Store.open("not a url")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot open the server database"):
        await Store.open(url(tmp_path / "file" / "below-a-file.db"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0h", "1y", "1.5d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


async def test_a_database_of_the_first_migration_is_upgraded_with_its_data(
    tmp_path: Path,
) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from rlmrt.server.storage import MIGRATIONS

    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:  # a database the first release made
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.exec_driver_sql(
            "INSERT INTO tenants (id, name, created_at) VALUES"
            " ('ten_1', 'acme', '2026-01-01 00:00:00.000000')"
        )
        connection.exec_driver_sql(
            "INSERT INTO api_keys (id, tenant_id, prefix, key_hash, created_at) VALUES"
            " ('key_1', 'ten_1', 'rlm-AAAAAAAA', 'h', '2026-01-01 00:00:00.000000')"
        )
        connection.exec_driver_sql(
            "INSERT INTO runs (id, tenant_id, key_id, profile, status, input_tokens,"
            " output_tokens, model_calls, cost_usd, created_at) VALUES ('run_1', 'ten_1',"
            " 'key_1', 'rlm', 'completed', 1, 2, 1, 0.5, '2026-01-01 00:00:00.000000')"
        )
    engine.dispose()
    store = await Store.open(url(path))
    try:
        (tenant,) = await store.tenants()
        assert (tenant.name, tenant.requests_per_minute, tenant.max_concurrent) == (
            "acme",
            None,
            None,
        )
        assert (await store.set_tenant_limits("acme", max_concurrent=3)).max_concurrent == 3
        assert [r.action for r in await store.audit_records()] == ["tenant.limits"]
        (run,) = await store.runs("acme")  # 0005: a run's key may be none, its subject kept
        assert (run.id, run.key_id, run.subject, run.output_tokens) == ("run_1", "key_1", None, 2)
    finally:
        await store.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


@pytest.mark.server_daemons
async def test_replicas_starting_at_once_migrate_a_new_database_once(postgres_url: str) -> None:
    """Four stores opening one empty PostgreSQL database at the same moment (replicas
    starting together): one migrates it, the others wait and find it migrated."""
    stores = await asyncio.gather(*(Store.open(postgres_url) for _ in range(4)))
    try:
        await stores[0].create_tenant("acme")
        assert [t.name for t in await stores[3].tenants()] == ["acme"]
    finally:
        for store in stores:
            await store.aclose()
