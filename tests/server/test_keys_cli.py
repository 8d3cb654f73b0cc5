"""`rlm tenants` and `rlm keys`: keys shown once, stored hashed, listed by prefix."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rlmrt.cli.main import app
from rlmrt.server.keys import KEY_PREFIX, PREFIX_CHARS, key_hash
from rlmrt.server.storage import Store


def rlm(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def database() -> Path:
    return Path(os.environ["RLMRT_HOME"]) / "server.db"


def test_tenants_and_keys_round_trip() -> None:
    assert rlm("tenants", "list").stdout.startswith("no tenants yet")
    made = rlm("tenants", "create", "acme")
    assert made.exit_code == 0 and made.stdout.startswith("created tenant acme (ten_")
    assert rlm("tenants", "create", "beta").exit_code == 0
    listed = json.loads(rlm("tenants", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["acme", "beta"]

    created = rlm("keys", "create", "--tenant", "acme", "--expires", "30d")
    assert created.exit_code == 0
    key = created.stdout.strip()
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
    assert "shown only now" in created.stderr and key not in created.stderr
    other = rlm("keys", "create", "--tenant", "beta").stdout.strip()
    assert other != key

    keys = json.loads(rlm("keys", "list", "--json").stdout)
    assert [(k["tenant"], k["prefix"], k["status"]) for k in keys] == [
        ("acme", key[:PREFIX_CHARS], "active"),
        ("beta", other[:PREFIX_CHARS], "active"),
    ]
    assert keys[0]["expires"] != "-" and keys[1]["expires"] == "-"
    table = rlm("keys", "list", "--tenant", "acme")
    assert key[:PREFIX_CHARS] in table.stdout and key not in table.stdout
    assert other[:PREFIX_CHARS] not in table.stdout

    revoked = rlm("keys", "revoke", key[:PREFIX_CHARS])
    assert revoked.exit_code == 0 and revoked.stdout.startswith("revoked key key_")
    statuses = {k["tenant"]: k["status"] for k in json.loads(rlm("keys", "list", "--json").stdout)}
    assert statuses == {"acme": "revoked", "beta": "active"}
    assert rlm("keys", "revoke", keys[1]["id"]).exit_code == 0  # by id too

    # only hashes are stored: the keys are in no file of the database
    files = [p for p in database().parent.iterdir() if p.name.startswith("server.db")]
    for path in files:
        data = path.read_bytes()
        assert key.encode() not in data and other.encode() not in data
    assert oct(database().stat().st_mode & 0o777) == "0o600"

    async def stored() -> list[str]:
        store = await Store.open(f"sqlite+aiosqlite:///{database()}")
        try:
            return [k.key_hash for k, _ in await store.keys()]
        finally:
            await store.aclose()

    assert asyncio.run(stored()) == [key_hash(key), key_hash(other)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tenants", "create", "no spaces"), "tenant name 'no spaces': use 1-64 letters"),
        (("keys", "create", "--tenant", "ghost"), "no tenant 'ghost' (tenants: none yet)"),
        (("keys", "create", "--tenant", "x", "--expires", "soon"), "--expires: 'soon' is not"),
        (("keys", "create", "--tenant", "x", "--expires", "0d"), "--expires: '0d' is not"),
        (("keys", "revoke", "rlm-nothing1"), "no key 'rlm-nothing1'"),
        (("keys", "list", "--tenant", "ghost"), "no tenant 'ghost'"),
    ],
)
def test_misuse_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = rlm(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message}")
    assert "Traceback" not in result.stderr


def test_a_tenant_is_made_once() -> None:
    assert rlm("tenants", "create", "acme").exit_code == 0
    again = rlm("tenants", "create", "acme")
    assert again.exit_code == 2 and "tenant 'acme' exists already" in again.stderr


def test_a_bad_database_url_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_SERVER__DATABASE_URL", "nosuchdb://user:hunter2@host/x")
    result = rlm("tenants", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: server.database_url nosuchdb://user:***@host/x")
    assert "hunter2" not in result.stderr


def test_daily_budgets_are_set_and_listed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite and PostgreSQL: a tenant's and a key's own USD per day."""
    monkeypatch.setenv("RLM_SERVER__DATABASE_URL", database_url)
    assert rlm("tenants", "create", "acme", "--daily-usd", "5").exit_code == 0
    assert rlm("keys", "create", "--tenant", "acme", "--daily-usd", "1.5").exit_code == 0
    assert rlm("keys", "create", "--tenant", "acme").exit_code == 0
    (tenant,) = json.loads(rlm("tenants", "list", "--json").stdout)
    assert tenant["usd_per_day"] == "5"
    keys = json.loads(rlm("keys", "list", "--json").stdout)
    assert [k["usd_per_day"] for k in keys] == ["1.5", "default"]
    set_ = rlm("tenants", "set", "acme", "--daily-usd", "0")
    assert set_.stdout.endswith(", USD/day none\n")
    refused = rlm("keys", "create", "--tenant", "acme", "--daily-usd", "-1")
    assert refused.exit_code == 2 and "--daily-usd" in refused.stderr
