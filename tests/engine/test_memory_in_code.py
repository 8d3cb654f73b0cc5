"""`memory` in the REPL: code remembers, recalls and forgets in the project's memory on
every sandbox kind; later runs see what earlier ones kept; each call is an event."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripting import repl

from rlmrt.events import Event, MemoryChanged, MemoryRecalled
from rlmrt.memory import MemoryStore
from rlmrt.observe.describe import describe
from rlmrt.testing import scripted

REMEMBER = (
    "i = memory.remember('the ledger splits on |', tags=['ledger'])\nprint(i.startswith('mem-'))"
)
RECALL = "hits = memory.recall('ledger split')\nprint([h['text'] for h in hits])"


@pytest.mark.parametrize("sandbox", ["local", "process", "docker"])
def test_code_keeps_what_a_later_run_recalls(serve, make_rlm, tmp_path: Path, sandbox) -> None:
    memory = tmp_path / "memory.sqlite"
    server = serve(
        scripted(
            root=[
                repl(REMEMBER),
                repl("FINAL('kept')"),
                repl(RECALL),
                repl("FINAL(hits[0]['id'])"),
            ]
        )
    )
    rlm = make_rlm(server, memory_path=memory, sandbox=sandbox)
    events: list[Event] = []
    rlm.subscribe(events.append)
    rlm.completion("remember it", context="c")
    second = rlm.completion("recall it", context="c")
    assert server.requests[1].last_user_text.startswith("Output:\nTrue")
    assert "['the ledger splits on |']" in server.requests[3].last_user_text
    with MemoryStore(memory) as store:
        [item] = store.items()
    assert (second.answer, item.tags) == (item.id, ["ledger"])
    changed = [e for e in events if isinstance(e, MemoryChanged)]
    assert [(e.action, e.item_id, e.text) for e in changed] == [
        ("remember", item.id, "the ledger splits on |")
    ]
    recalled = [e for e in events if isinstance(e, MemoryRecalled) and e.purpose == "recall"]
    assert [[i["id"] for i in e.items] for e in recalled] == [[item.id]]
    assert describe(changed[0]) == 'memory.remember: "the ledger splits on |"'


def test_forget_and_bad_calls(serve, make_rlm, tmp_path: Path) -> None:
    memory = tmp_path / "memory.sqlite"
    with MemoryStore(memory) as store:
        item = store.remember("old note")
    code = (
        f"print(memory.forget({item.id!r}), memory.forget({item.id!r}))\n"
        "try:\n    memory.recall('q', k=500)\nexcept TypeError as exc:\n    print(exc)"
    )
    server = serve(scripted(root=[repl(code), repl("FINAL('done')")]))
    make_rlm(server, memory_path=memory).completion("q", context="c")
    out = server.requests[1].last_user_text
    assert "True False" in out
    assert "memory.recall() k must be an int from 1 to 100, got 500" in out
    with MemoryStore(memory) as store:
        assert store.items() == []


def test_the_prompt_lists_memory_only_where_code_may_use_it(serve, make_rlm, tmp_path) -> None:
    server = serve(lambda request: "FINAL(42)")
    memory = tmp_path / "memory.sqlite"
    listed = []
    for settings in ({}, {"prompt_profile": "small"}, {"memory_in_repl": False}):
        first = len(server.requests)
        rlm = make_rlm(server, memory_path=memory, max_iterations=2, **settings)
        rlm.completion("q", context="c")
        listed.append("memory.recall(query, k=5)" in server.requests[first].system_text)
    assert listed == [True, False, False]


def test_memory_off_refuses_code_its_calls(serve, make_rlm, tmp_path: Path) -> None:
    memory = tmp_path / "memory.sqlite"
    code = (
        "for call in (lambda: memory.remember('x'), lambda: memory.recall('x'),"
        " lambda: memory.forget('mem-1')):\n"
        "    try:\n        call()\n    except Exception as exc:\n        print(exc)"
    )
    server = serve(scripted(root=[repl(code), repl("FINAL('done')")]))
    make_rlm(server, memory_path=memory, memory_in_repl=False).completion("q", context="c")
    out = server.requests[1].last_user_text
    assert out.count("memory is off for this run's code (memory_in_repl = false)") == 3
    assert not memory.exists()
