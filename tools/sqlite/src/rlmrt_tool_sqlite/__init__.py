"""`tools.sqlite(sql)`: read-only SQL over one SQLite database file.

The file is opened read-only (a ``mode=ro`` URI) and every statement is checked by an
authorizer that allows reading only: no writes, no ATTACH of other files, no PRAGMA
that changes anything. A query returns at most `max_rows` rows (capped by the tool's
own `row_cap`) and stops at `timeout_s` of work.

Installed, the entry point `sqlite` reads the file named by RLMRT_SQLITE_DATABASE (a
path settings must grant: ``[tools.sqlite] paths = ["shop.db"]``). In code,
``sqlite_tool("shop.db")`` makes the tool for one file.
"""

import os
import sqlite3
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import Field

from rlmrt.tools import FunctionTool, ToolNeeds

__all__ = ["DATABASE_VARIABLE", "sqlite_tool"]

__version__ = "1.0.0"

#: the environment variable naming the database of the installed tool
DATABASE_VARIABLE = "RLMRT_SQLITE_DATABASE"

_READING = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
#: PRAGMAs that only report (the schema of a table, its indexes)
_READING_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "foreign_key_list"}


def sqlite_tool(
    database: str | Path,
    *,
    row_cap: int = 1000,
    timeout_s: float = 30.0,
    name: str = "sqlite",
) -> FunctionTool:
    """The `sqlite` tool over `database` (which must exist): its needs are that path."""
    path = Path(database).expanduser().resolve()
    uri = f"file:{quote(str(path))}?mode=ro"

    def sqlite(sql: str, max_rows: Annotated[int, Field(ge=1, le=row_cap)] = 100) -> dict[str, Any]:
        """One read-only SQL query (tables listed in sqlite_master) -> {columns, rows, truncated}.

        Args:
            sql: one SELECT statement (or WITH ... SELECT); writes are refused
            max_rows: at most this many rows come back; `truncated` says if there were more
        """
        if not path.is_file():
            raise ValueError(f"argument 'sql': the database {path} does not exist")
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            connection.set_authorizer(_reading_only)
            deadline = time.monotonic() + timeout_s
            connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            try:
                cursor = connection.execute(sql)
                rows = cursor.fetchmany(max_rows + 1)
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"argument 'sql': {_why(exc, timeout_s)}") from None
            except sqlite3.Warning as exc:  # "You can only execute one statement at a time."
                raise ValueError(f"argument 'sql': {exc}") from None
            columns = [d[0] for d in cursor.description or ()]
        finally:
            connection.close()
        return {
            "columns": columns,
            "rows": [list(row) for row in rows[:max_rows]],
            "truncated": len(rows) > max_rows,
        }

    return FunctionTool(
        sqlite,
        name=name,
        version=__version__,
        needs=ToolNeeds(paths=(str(path),)),
    )


def _reading_only(action: int, arg1: str | None, *_: Any) -> int:
    if action in _READING:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg1 in _READING_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _why(exc: sqlite3.DatabaseError, timeout_s: float) -> str:
    text = str(exc)
    if text == "not authorized":
        return "only reading queries are allowed (SELECT); this statement writes or attaches"
    if text == "interrupted":
        return f"the query ran longer than {timeout_s:g} s and was stopped"
    return text


def __getattr__(name: str) -> Any:
    """The installed tool (entry point `sqlite`), made when it is looked up."""
    if name != "sqlite":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    database = os.environ.get(DATABASE_VARIABLE)
    if not database:
        raise LookupError(f"set {DATABASE_VARIABLE} to the database file the sqlite tool reads")
    return sqlite_tool(database)
