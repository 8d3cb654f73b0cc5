"""A root run's first prompt shows the project's pinned memories and the learned lessons
most like its question, capped, each recorded as an event; without a store, nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripting import repl

from rlmrt.errors import ConfigError
from rlmrt.events import Event, MemoryRecalled
from rlmrt.memory import MemoryStore
from rlmrt.observe.describe import describe
from rlmrt.testing import scripted
from rlmrt.testing.server import word_embedder


def _run(serve, make_rlm, memory: Path, *, context: str = "c", **settings):
    server = serve(scripted(root=[repl("FINAL('ok')")]))
    rlm = make_rlm(server, memory_path=memory, **settings)
    events: list[Event] = []
    rlm.subscribe(events.append)
    rlm.completion("How many ledger invoices are overdue?", context=context)
    return server.requests[0].last_user_text, [e for e in events if isinstance(e, MemoryRecalled)]


def test_pinned_items_and_matching_lessons_reach_the_first_prompt(
    serve, make_rlm, tmp_path: Path
) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite")
    pinned = store.remember("Amounts are in EUR.", pinned=True)
    store.remember("Not pinned, so not shown.")
    lesson = store.remember(
        "Overdue invoices in a ledger: split each line on '|' and compare the status field.",
        kind="lesson",
        source_runs=["run-1"],
    )
    store.remember("Log levels: the second word of each log line.", kind="lesson")
    store.close()
    prompt, events = _run(serve, make_rlm, tmp_path / "memory.sqlite")
    assert "Remembered for this project (pinned):\n- Amounts are in EUR." in prompt
    assert "Not pinned" not in prompt
    assert "split each line on '|' and compare the status field" in prompt
    assert "Log levels" not in prompt  # it shares no word with the question
    assert prompt.index("Amounts are in EUR.") < prompt.index("Question: How many")
    assert [(e.purpose, [i["id"] for i in e.items]) for e in events] == [
        ("pinned", [pinned.id]),
        ("lessons", [lesson.id]),
    ]
    assert describe(events[1]) == "memory: 1 learned lesson(s) in the first prompt"


def test_learning_off_and_the_pinned_cap(serve, make_rlm, tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory.sqlite")
    store.remember("first pinned, short", pinned=True)
    store.remember("second pinned " + "x" * 400, pinned=True)
    store.remember("ledger invoices overdue lesson", kind="lesson")
    store.close()
    prompt, events = _run(
        serve, make_rlm, tmp_path / "memory.sqlite", learning=False, pinned_max_tokens=20
    )
    assert "first pinned, short" in prompt and "second pinned" not in prompt
    assert "lesson" not in prompt
    assert [e.purpose for e in events] == ["pinned"]


def test_without_a_store_the_prompt_is_unchanged_and_no_file_is_made(
    serve, make_rlm, tmp_path: Path
) -> None:
    prompt, events = _run(serve, make_rlm, tmp_path / "none" / "memory.sqlite")
    assert "Remembered" not in prompt and "Lessons" not in prompt and events == []
    assert not (tmp_path / "none").exists()


def test_lessons_are_ranked_by_the_question_and_the_datas_first_line(
    serve, make_rlm, tmp_path: Path
) -> None:
    """Two lessons the question matches as well: the one learned on data shaped like this
    run's context (its first line's words) comes first; the other data, the other one."""
    store = MemoryStore(tmp_path / "memory.sqlite")
    asked = 'Worked example: asked "How many ledger invoices are overdue?" of data with lines like'
    piped = store.remember(f"{asked} `INV-1 | Globex | 200 USD | OVERDUE`", kind="lesson")
    keyed = store.remember(f"{asked} `invoice=7 customer=Hooli state=late`", kind="lesson")
    store.close()
    memory = tmp_path / "memory.sqlite"
    for context, first in (
        ("\nINV-9 | Tyrell | 50 USD | PAID\nINV-10 | Acme | 7 USD | OVERDUE", piped),
        ("invoice=1 customer=Acme state=paid\ninvoice=2 customer=Tyrell state=late", keyed),
    ):
        _, events = _run(serve, make_rlm, memory, context=context, learned_max_notes=1)
        assert [(e.purpose, [i["id"] for i in e.items]) for e in events] == [
            ("lessons", [first.id])
        ], context


def test_a_damaged_store_fails_the_run_with_its_name(serve, make_rlm, tmp_path: Path) -> None:
    """A store that cannot be read fails the run, naming it, before any model call."""
    (tmp_path / "memory.sqlite").write_bytes(b"not a database " * 100)
    server = serve(scripted(root=[repl("FINAL('ok')")]))
    rlm = make_rlm(server, memory_path=tmp_path / "memory.sqlite")
    with pytest.raises(ConfigError, match=r"memory store .*memory\.sqlite is damaged"):
        rlm.completion("How many ledger invoices are overdue?", context="c")
    assert server.requests == []  # no model was called


def test_a_runs_memory_calls_use_the_configured_embeddings(serve, make_rlm, tmp_path: Path) -> None:
    key = "sk-embed-secret-0123456789"
    code = (
        "memory.remember('the invoice is due on Friday')\n"
        "memory.remember('the cat sleeps')\n"
        "print([item['text'] for item in memory.recall('bill', k=2)])\n"
        f"print('{key}')"
    )
    server = serve(
        scripted(root=[repl(code), "FINAL(done)"]),
        embedder=word_embedder(synonyms={"bill": "invoice"}),
    )
    memory = tmp_path / "memory.sqlite"
    rlm = make_rlm(
        server,
        memory_path=memory,
        embedding_model="openai/embed",
        embedding_api_base=server.url,
        embedding_api_key=key,
    )
    result = rlm.completion("q", context="c")
    # no store yet at the first prompt: no lessons to rank, no call; then two texts
    # remembered and one query
    assert [body["input"] for body in server.embedding_requests] == [
        ["the invoice is due on Friday"],
        ["the cat sleeps"],
        ["bill"],
    ]
    assert result.trajectory_path is not None
    text = result.trajectory_path.read_text()
    assert "['the invoice is due on Friday']" in text
    assert key not in text  # the embedding key is redacted like the model's
