"""The local model answers a question over a SQLite database only through the `sqlite`
tool: the run has no context that holds the answer, only the tool granted on one file,
so a right answer means its code queried the database.

Marked `local_model` (run by .ci/run after scripts/setup pulled the model); it shares
the `server` fixture of conftest (started on demand, stopped only if started here).
"""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest
from local_helpers import local_rlm

from rlmrt.local.server import ServerInfo
from rlmrt.testing import assert_tool_called

rlmrt_tool_sqlite = pytest.importorskip("rlmrt_tool_sqlite")  # tools/sqlite, installed by setup

pytestmark = [pytest.mark.local_model, pytest.mark.usefixtures("real_models_dir")]


def _shop(path: Path, rng: random.Random) -> int:
    """An orders table of 400 rows in `path`; how many are shipped with an amount over 100."""
    rows = [
        (
            rng.choice(("ana", "bo", "chen", "dara", "eli")),
            rng.choice(("shipped", "pending", "cancelled")),
            rng.randint(5, 250),
        )
        for _ in range(400)
    ]
    with sqlite3.connect(path) as db:
        db.execute(
            "create table orders (id integer primary key, customer text, status text,"
            " amount integer)"
        )
        db.executemany("insert into orders (customer, status, amount) values (?, ?, ?)", rows)
    db.close()
    return sum(1 for _, status, amount in rows if status == "shipped" and amount > 100)


@pytest.mark.timeout(1800)  # a few steps of a 1.5B model on a shared CPU
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_question_answered_through_the_sqlite_tool(
    server: ServerInfo, tmp_path: Path, seed: int
) -> None:
    database = tmp_path / "shop.db"
    count = _shop(database, random.Random(seed))
    rlm = local_rlm(
        server,
        tmp_path,
        max_iterations=6,
        tool_grants={"paths": [str(database)]},
        request_timeout_s=600,  # the shared server queues requests: a retry only adds to it
    )
    try:
        result = rlm.completion(
            "How many orders in the shop database have status 'shipped' and an amount"
            " over 100? Answer with the number.",
            tools=[rlmrt_tool_sqlite.sqlite_tool(database)],
        )
    finally:
        rlm.close()
    assert result.answer is not None and not result.partial, result.stop_reason
    assert str(count) in re.findall(r"\d+", result.answer.replace(",", "")), (count, result.answer)
    assert_tool_called(result, "sqlite", where={"ok": True})
