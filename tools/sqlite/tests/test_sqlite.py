"""The sqlite tool: read-only by construction (mode=ro and an authorizer), rows capped,
long queries stopped; its contract; a run whose code queries it from each sandbox."""

import sqlite3
from pathlib import Path

import pytest

from rlmrt.testing import assert_tool_called, tool_contract
from rlmrt.tools import FunctionTool
from rlmrt_tool_sqlite import sqlite_tool


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("create table orders (id integer primary key, item text, qty integer)")
        db.executemany(
            "insert into orders (item, qty) values (?, ?)",
            [(f"item{i}", i % 7) for i in range(250)],
        )
    db.close()
    return path


@pytest.fixture
def sqlite(shop: Path) -> FunctionTool:
    return sqlite_tool(shop, row_cap=500, timeout_s=2)


def run(tool: FunctionTool, **kwargs: object) -> object:
    import asyncio

    from rlmrt.tools import Secrets

    return asyncio.run(tool.run(tool.arguments((), kwargs), Secrets({})))


LOOP_FOREVER = (
    "with recursive n(i) as (select 1 union all select i + 1 from n) select count(*) from n"
)


def test_the_contract(sqlite: FunctionTool) -> None:
    result = tool_contract(
        sqlite,
        call={"sql": "select item, qty from orders order by id limit 2"},
        bad_calls={
            "sql": {"sql": "delete from orders"},
            "max_rows": {"sql": "select 1", "max_rows": 501},
        },
        slow_call={"sql": LOOP_FOREVER},
        timeout_s=0.3,
    )
    assert result == {
        "columns": ["item", "qty"],
        "rows": [["item0", 0], ["item1", 1]],
        "truncated": False,
    }
    assert sqlite.needs.paths == (str(Path(sqlite.needs.paths[0]).resolve()),)


@pytest.mark.parametrize(
    "sql",
    [
        "insert into orders (item, qty) values ('x', 1)",
        "update orders set qty = 0",
        "drop table orders",
        "create table t (x)",
        "attach database '/tmp/other.db' as other",
        "pragma journal_mode = wal",
        "pragma query_only = 0",
    ],
)
def test_every_write_is_refused_naming_sql(sqlite: FunctionTool, shop: Path, sql: str) -> None:
    before = shop.read_bytes()
    with pytest.raises(ValueError, match="argument 'sql': only reading queries are allowed"):
        run(sqlite, sql=sql)
    assert shop.read_bytes() == before


def test_rows_are_capped_and_reading_pragmas_work(sqlite: FunctionTool) -> None:
    out = run(sqlite, sql="select id from orders")
    assert len(out["rows"]) == 100 and out["truncated"] is True  # type: ignore[index]
    out = run(sqlite, sql="select id from orders", max_rows=500)
    assert len(out["rows"]) == 250 and out["truncated"] is False  # type: ignore[index]
    out = run(sqlite, sql="pragma table_info(orders)")
    assert [row[1] for row in out["rows"]] == ["id", "item", "qty"]  # type: ignore[index]


def test_a_long_query_is_stopped_and_bad_sql_is_named(shop: Path) -> None:
    quick = sqlite_tool(shop, timeout_s=0.2)
    with pytest.raises(ValueError, match=r"argument 'sql': the query ran longer than 0.2 s"):
        run(quick, sql=LOOP_FOREVER)
    with pytest.raises(ValueError, match="argument 'sql': no such table: nope"):
        run(quick, sql="select * from nope")
    with pytest.raises(ValueError, match="argument 'sql': You can only execute one statement"):
        run(quick, sql="select 1; select 2")


def test_the_installed_tool_reads_the_variables_database(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rlmrt_tool_sqlite

    monkeypatch.delenv("RLMRT_SQLITE_DATABASE", raising=False)
    with pytest.raises(LookupError, match="set RLMRT_SQLITE_DATABASE"):
        rlmrt_tool_sqlite.sqlite  # noqa: B018
    monkeypatch.setenv("RLMRT_SQLITE_DATABASE", str(shop))
    installed = rlmrt_tool_sqlite.sqlite
    assert installed.needs.paths == (str(shop.resolve()),)


CODE = """\
```repl
rows = tools.sqlite("select qty, count(*) from orders group by qty order by qty")["rows"]
print(rows)
FINAL(sum(count for qty, count in rows if qty >= 5))
```"""


def test_code_queries_it_from_each_sandbox(
    scripted_rlm, rlm_sandbox_kind: str, sqlite: FunctionTool, shop: Path
) -> None:
    rlm = scripted_rlm([CODE], sandbox=rlm_sandbox_kind, tool_grants={"paths": [str(shop)]})
    result = rlm.completion("how many orders of 5 or more?", context="c", tools=[sqlite])
    assert result.answer == "70"  # qty 5: 35 rows, qty 6: 35 rows
    assert_tool_called(result, "sqlite", where={"ok": True}, times=1)


def test_without_the_path_granted_it_is_not_offered(scripted_rlm, sqlite: FunctionTool) -> None:
    code = "```repl\ntry:\n    tools.sqlite('select 1')\nexcept Exception as e:\n    print(e)\n```"
    rlm = scripted_rlm([code, "FINAL(done)"])
    rlm.completion("q", context="c", tools=[sqlite])
    assert "tools.sqlite is not offered to this run: it needs path" in (
        scripted_rlm.server.requests[1].last_user_text
    )


def test_installed_and_granted_in_rlm_toml_it_is_offered(
    scripted_rlm, shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLMRT_SQLITE_DATABASE", str(shop))
    (tmp_path / "rlm.toml").write_text(
        f'[tools.sqlite]\nversion = ">=1,<2"\npaths = [{str(shop)!r}]\n'
    )
    rlm = scripted_rlm([CODE])  # no tools= : the entry point, granted by rlm.toml
    result = rlm.completion("how many orders of 5 or more?", context="c")
    assert result.answer == "70"
    assert_tool_called(result, "sqlite", where={"version": "1.0.0", "ok": True}, times=1)
