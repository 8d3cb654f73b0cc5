"""The audit log: records of key, tenant, auth and run events, one linear hash chain
(also under concurrent appends, from one process and from two), and `rlm audit verify`
finding an edited, a deleted and two swapped records."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_daemons import run_sql
from serving import RLM_TOML, InProcessServer, serving
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner, Result

from rlmrt.cli.main import app
from rlmrt.observe.usage import Usage
from rlmrt.server.audit import GENESIS, Entry, record_hash
from rlmrt.server.auth import Caller
from rlmrt.server.storage import Store


def rlm(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def database() -> Path:
    return Path(os.environ["RLMRT_HOME"]) / "server.db"


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def listed(*args: str) -> list[dict[str, object]]:
    result = rlm("audit", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    records: list[dict[str, object]] = json.loads(result.stdout)
    return records


def test_cli_changes_are_audited_and_listed() -> None:
    assert rlm("audit", "verify").stdout == "0 records, chain intact\n"
    assert rlm("tenants", "create", "acme", "--rpm", "10").exit_code == 0
    assert rlm("tenants", "create", "beta").exit_code == 0
    key = rlm("keys", "create", "--tenant", "acme").stdout.strip()
    assert rlm("keys", "revoke", key[:12]).exit_code == 0
    assert rlm("keys", "revoke", key[:12]).exit_code == 0  # again: nothing changes
    set_ = rlm(
        "tenants", "set", "beta", "--max-concurrent", "2", "--tpm", "0", "--daily-usd", "2.5"
    )
    assert set_.exit_code == 0
    assert set_.stdout == (
        "tenant beta: requests/min default, tokens/min none, concurrent runs 2, USD/day 2.5\n"
    )

    records = listed()
    assert [(r["action"], r["actor"], r["target"]) for r in records] == [
        ("tenant.create", "cli", "acme"),
        ("tenant.create", "cli", "beta"),
        ("key.create", "cli", key[:12]),
        ("key.revoke", "cli", key[:12]),
        ("tenant.limits", "cli", "beta"),
    ]
    assert records[0]["detail"] == {"requests_per_minute": 10}
    assert records[4]["detail"] == {"tokens_per_minute": 0, "max_concurrent": 2, "daily_usd": 2.5}
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))
    assert [r["action"] for r in listed("--tenant", "beta")] == ["tenant.create", "tenant.limits"]
    assert len(listed("--since", "1h")) == 5
    assert "tenant.limits" in rlm("audit", "list").stdout
    assert key not in database().read_bytes().decode("latin-1")

    verified = rlm("audit", "verify")
    assert verified.exit_code == 0 and verified.stdout == "5 records, chain intact\n"
    reset = rlm("tenants", "set", "beta", "--reset")
    assert reset.stdout == (
        "tenant beta: requests/min default, tokens/min default, concurrent runs default,"
        " USD/day default\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("audit", "list", "--since", "yesterday"), "--since: 'yesterday' is not a duration"),
        (("audit", "list", "--tenant", "ghost"), "no tenant 'ghost'"),
        (("tenants", "set", "ghost", "--rpm", "1"), "no tenant 'ghost'"),
        (("tenants", "set", "acme"), "give a limit to set"),
        (("tenants", "create", "x", "--rpm", "-1"), "Invalid value for '--rpm'"),
    ],
)
def test_misuse_is_one_line(args: tuple[str, ...], message: str) -> None:
    result = rlm(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def chain(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The database `rlm audit` and `rlm keys` use in a test: SQLite or PostgreSQL."""
    monkeypatch.setenv("RLM_SERVER__DATABASE_URL", database_url)
    return database_url


def tamper(chain: str, sql: str, **params: object) -> None:
    run_sql(chain, sql, **params)


def fresh_log(records: int) -> None:
    assert rlm("tenants", "create", "acme").exit_code == 0
    for _ in range(records - 1):
        assert rlm("keys", "create", "--tenant", "acme").exit_code == 0
    assert rlm("audit", "verify").stdout == f"{records} records, chain intact\n"


def broken_at() -> str:
    result = rlm("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout.startswith("audit log broken at record ")
    return result.stdout


def test_verify_finds_an_edited_record(chain: str) -> None:
    fresh_log(5)
    tamper(chain, "UPDATE audit_log SET client = '10.0.0.9' WHERE seq = 3")
    assert broken_at().startswith("audit log broken at record 3: was changed")


def test_verify_finds_an_edited_record_whose_hash_was_recomputed(chain: str) -> None:
    fresh_log(5)
    tamper(chain, "UPDATE audit_log SET actor = 'someone' WHERE seq = 2")

    async def rehash() -> str:
        store = await Store.open(chain)
        try:
            return record_hash((await store.audit_records())[1])
        finally:
            await store.aclose()

    tamper(chain, "UPDATE audit_log SET hash = :hash WHERE seq = 2", hash=asyncio.run(rehash()))
    assert broken_at().startswith("audit log broken at record 3: does not follow record 2")


def test_verify_finds_a_deleted_record(chain: str) -> None:
    fresh_log(5)
    tamper(chain, "DELETE FROM audit_log WHERE seq = 2")
    assert broken_at().startswith("audit log broken at record 3: does not follow record 1")


def test_verify_finds_two_swapped_records(chain: str) -> None:
    fresh_log(5)
    # records 2 and 4 trade places
    tamper(chain, "UPDATE audit_log SET seq = -2 WHERE seq = 2")
    tamper(chain, "UPDATE audit_log SET seq = 2 WHERE seq = 4")
    tamper(chain, "UPDATE audit_log SET seq = 4 WHERE seq = -2")
    assert broken_at().startswith("audit log broken at record 2: does not follow record 1")


def test_verify_finds_a_changed_first_record(chain: str) -> None:
    fresh_log(3)
    tamper(chain, "UPDATE audit_log SET detail = :detail WHERE seq = 1", detail='{"x":1}')
    assert broken_at().startswith("audit log broken at record 1: was changed")


async def test_concurrent_appends_keep_one_chain(database_url: str) -> None:
    """Appends of one store at once, and of two stores on one database (replicas, the
    CLI beside the server) at once, on SQLite and PostgreSQL: every record is kept, and
    the chain is one line."""
    first = await Store.open(database_url)
    second = await Store.open(database_url)
    try:
        await asyncio.gather(
            *(first.audit("test.one", target=str(i)) for i in range(40)),
            *(second.audit("test.two", target=str(i)) for i in range(40)),
        )
        records = await first.audit_records()
        assert [r.seq for r in records] == list(range(1, 81))
        assert sorted((r.action, int(r.target or 0)) for r in records) == sorted(
            [("test.one", i) for i in range(40)] + [("test.two", i) for i in range(40)]
        )
        assert await first.verify_audit() == (80, None)
    finally:
        await first.aclose()
        await second.aclose()


async def test_runs_and_their_records_are_written_together(database_url: str) -> None:
    """A run's row and its audit record share one transaction, from two stores at once
    (two replicas): every run has its row and its records, the chain is one line, and
    a run whose row cannot be stored leaves no record."""
    first = await Store.open(database_url)
    second = await Store.open(database_url)
    try:
        await first.create_tenant("acme")
        caller = Caller.of_key((await first.create_key("acme"))[1], await first.tenant("acme"))
        before = len(await first.audit_records())

        async def run(store: Store, run_id: str) -> None:
            entry = Entry("run.create", caller.actor, tenant_id=caller.tenant_id, target=run_id)
            await store.start_run(run_id, caller=caller, profile="rlm", audited=entry)
            await store.finish_run(
                run_id,
                status="completed",
                stop_reason="final",
                usage=Usage(input_tokens=3),
                audited=replace(entry, action="run.finish"),
            )

        await asyncio.gather(
            *(run(store, f"r{i}-{n}") for i, store in enumerate((first, second)) for n in range(15))
        )
        rows = {r.id: (r.status, r.input_tokens) for r in await first.runs("acme")}
        assert rows == {f"r{i}-{n}": ("completed", 3) for i in range(2) for n in range(15)}
        records = (await first.audit_records())[before:]
        assert sorted((r.action, r.target) for r in records) == sorted(
            (action, run_id) for run_id in rows for action in ("run.create", "run.finish")
        )
        assert await first.verify_audit() == (before + 60, None)
        with pytest.raises(IntegrityError):  # the run exists already: nothing is appended
            await run(first, "r0-0")
        assert len(await first.audit_records()) == before + 60
    finally:
        await first.aclose()
        await second.aclose()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serving(tmp_path_factory.mktemp("audit"), RLM_TOML) as server:
        time.sleep(1.1)  # the expiring key's second is over
        yield server


async def server_records(api: InProcessServer) -> list[dict[str, Any]]:
    """The server's audit records (its chain checked first)."""
    store = await Store.open(url(api.database))
    try:
        assert (await store.verify_audit())[1] is None
        return [
            {"action": r.action, "actor": r.actor, "tenant": r.tenant_id, "target": r.target}
            | {"client": r.client, "detail": json.loads(r.detail)}
            for r in await store.audit_records()
        ]
    finally:
        await store.aclose()


async def records_after(
    api: InProcessServer, before: int, *, finished: int
) -> list[dict[str, Any]]:
    """The server's records after the first `before`, once `finished` runs' ends are
    among them: a completion's end is written right after its answer was sent
    (`completions.RunResponse`), so it may land a moment after the client has it."""
    deadline = time.monotonic() + 10
    while True:
        records = (await server_records(api))[before:]
        ends = [r for r in records if r["action"] in ("run.finish", "run.cancel")]
        if len(ends) >= finished or time.monotonic() > deadline:
            return records
        await asyncio.sleep(0.05)


async def test_requests_are_audited_in_one_chain_when_concurrent(api: InProcessServer) -> None:
    """Runs (created, finished) and failed authentications of concurrent requests."""
    before = len(await server_records(api))
    good = api.keys["acme"]
    bogus = "rlm-" + "X" * 43
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:

        async def run(i: int) -> int:
            response = await http.post(
                "/chat/completions",
                headers={"Authorization": f"Bearer {good}"},
                json={
                    "model": "rlm",
                    "messages": [{"role": "user", "content": "n?"}],
                    "context": "x" * i,
                },
            )
            return response.status_code

        async def fail(token: str) -> int:
            response = await http.get("/models", headers={"Authorization": f"Bearer {token}"})
            return response.status_code

        statuses = await asyncio.gather(
            *(run(i) for i in range(4)),
            *(fail(t) for t in (bogus, "not-a-key", api.keys["revoked"], api.keys["expired"])),
        )
    assert statuses == [200] * 4 + [401] * 4
    records = await records_after(api, before, finished=4)
    runs = [r for r in records if r["action"].startswith("run.")]
    assert sorted(r["action"] for r in runs) == ["run.create"] * 4 + ["run.finish"] * 4
    assert all(r["actor"] == good[:12] and r["client"] == "127.0.0.1" for r in runs)
    finished = [r for r in runs if r["action"] == "run.finish"]
    assert all(r["detail"]["status"] == "completed" for r in finished)
    assert all(r["detail"]["total_tokens"] > 0 for r in finished)
    fails = sorted(
        (r["actor"], r["detail"]["reason"]) for r in records if r["action"] == "auth.fail"
    )
    assert fails == sorted(
        [
            (bogus[:12], "unknown key"),
            ("-", "unknown key"),
            (api.keys["revoked"][:12], "revoked key"),
            (api.keys["expired"][:12], "expired key"),
        ]
    )
    text = json.dumps(records)
    for secret in (good, bogus, api.keys["revoked"], "not-a-key", "x" * 4):
        assert secret not in text  # no key, no prompt, no context
