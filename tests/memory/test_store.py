"""The memory store on a real SQLite file: remember, recall, forget, feedback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rlmrt.errors import ConfigError
from rlmrt.memory import Feedback, MemoryStore


@pytest.fixture
def store(tmp_path: Path):
    opened = MemoryStore(tmp_path / "memory.sqlite")
    yield opened
    opened.close()


def test_recall_ranks_by_the_words_of_the_query(store: MemoryStore) -> None:
    store.remember("The ledger separates fields with a pipe: split on '|'", tags=["ledger"])
    store.remember("Log lines start with an ISO timestamp then the level", tags=["logs"])
    store.remember("Invoices marked OVERDUE are in the sixth field of the ledger")
    found = store.recall("how are ledger fields separated?", k=2)
    assert found[0].text.startswith("The ledger separates fields")
    assert len(found) == 2
    assert store.recall("timestamp", k=5)[0].tags == ["logs"]
    assert store.recall("nothing like this at all") == []


def test_forget_and_list_by_kind_and_pin(store: MemoryStore) -> None:
    fact = store.remember("a fact")
    note = store.remember("a pinned note", kind="note", pinned=True)
    lesson = store.remember("a lesson", kind="lesson", source_runs=["run-1"])
    assert [i.id for i in store.items()] == [fact.id, note.id, lesson.id]
    assert [i.id for i in store.items(kind="lesson")] == [lesson.id]
    assert store.items(kind="lesson")[0].source_runs == ["run-1"]
    assert [i.id for i in store.items(pinned=True)] == [note.id]
    assert store.forget(fact.id) is True
    assert store.forget(fact.id) is False
    assert store.recall("fact") == []  # gone from the search too
    assert [i.id for i in store.items()] == [note.id, lesson.id]


def test_reading_an_absent_store_creates_no_file(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "sub" / "memory.sqlite")
    assert store.items() == [] and store.recall("anything") == []
    assert store.feedback() == [] and store.forget("mem-1") is False
    assert not (tmp_path / "sub").exists()


def test_two_stores_never_see_each_other(tmp_path: Path) -> None:
    one, two = MemoryStore(tmp_path / "a.sqlite"), MemoryStore(tmp_path / "b.sqlite")
    one.remember("the secret of project A")
    assert two.recall("secret") == [] and two.items() == []
    one.close()
    two.close()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.remember(""), "non-empty string"),
        (lambda s: s.remember("x" * 10_001), "at most 10,000 characters"),
        (lambda s: s.remember("x", kind="rumour"), "one of fact, note, lesson"),
        (lambda s: s.remember("x", tags=["two words"]), "one word without spaces"),
        (lambda s: s.recall("x", k=0), "k must be an int from 1 to 100"),
        (lambda s: s.recall("   "), "the search query is empty"),
    ],
)
def test_bad_arguments_are_named(store: MemoryStore, call, message) -> None:
    with pytest.raises(ConfigError, match=message):
        call(store)


def test_query_syntax_is_plain_words(store: MemoryStore) -> None:
    store.remember('a "quoted" AND (odd) text: col*')
    assert len(store.recall('"quoted" AND (odd) col:*')) == 1


def test_feedback_is_kept_and_replaced_per_run(store: MemoryStore) -> None:
    store.give_feedback(Feedback(run_id="r1", verdict="bad", note="wrong field", expected="138"))
    store.give_feedback(Feedback(run_id="r2", verdict="good"))
    store.give_feedback(Feedback(run_id="r1", verdict="good"))
    got = {f.run_id: f for f in store.feedback()}
    assert (got["r1"].verdict, got["r1"].note) == ("good", None)
    store.mark_distilled(["r2"])
    assert [f.run_id for f in store.feedback(distilled=False)] == ["r1"]
    with pytest.raises(ConfigError, match="good or bad"):
        store.give_feedback(Feedback(run_id="r3", verdict="meh"))  # type: ignore[arg-type]


def test_a_damaged_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="is damaged"):
        MemoryStore(damaged).items()
    newer = tmp_path / "newer.sqlite"
    MemoryStore(newer).remember("x")
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ConfigError, match="has schema 99; this rlmrt reads schema 1"):
        MemoryStore(newer).items()
