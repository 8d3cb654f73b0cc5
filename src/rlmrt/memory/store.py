"""The memory store: items a project remembers (facts, pinned notes, notes learned from
feedback) searchable with SQLite's full-text search, and the feedback given on runs.

One SQLite file per project (`[memory] path`; a project's lives under its own folder),
so one project's memory is never read from another's."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from rlmrt.context.local_index import fts_query
from rlmrt.errors import ConfigError

MemoryKind = Literal["fact", "note", "lesson"]
KINDS: tuple[MemoryKind, ...] = ("fact", "note", "lesson")
Verdict = Literal["good", "bad"]
MAX_TEXT_CHARS = 10_000
MAX_TAGS = 20
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    tags TEXT NOT NULL,
    pinned INTEGER NOT NULL,
    created TEXT NOT NULL,
    source_runs TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    text, tags, content='items', content_rowid='rowid', tokenize='unicode61'
);
CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, text, tags) VALUES (new.rowid, new.text, new.tags);
END;
CREATE TRIGGER IF NOT EXISTS items_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, text, tags)
    VALUES ('delete', old.rowid, old.text, old.tags);
END;
CREATE TABLE IF NOT EXISTS item_vectors (
    item_id TEXT PRIMARY KEY REFERENCES items(id),
    model TEXT NOT NULL,
    dims INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS items_vectors_ad AFTER DELETE ON items BEGIN
    DELETE FROM item_vectors WHERE item_id = old.id;
END;
CREATE TABLE IF NOT EXISTS feedback (
    run_id TEXT PRIMARY KEY,
    verdict TEXT NOT NULL,
    note TEXT,
    expected TEXT,
    prompt TEXT,
    answer TEXT,
    created TEXT NOT NULL,
    distilled INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One remembered text; `source_runs` are the runs it came from (learned notes)."""

    id: str
    text: str
    kind: MemoryKind = "fact"
    tags: list[str] = field(default_factory=list)
    pinned: bool = False
    created: str = ""
    source_runs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Embedding:
    """An item's vector and the model that computed it (vectors of other models are
    not compared with it). Stored as 32-bit floats in this machine's byte order."""

    model: str
    vector: Sequence[float]


@dataclass(frozen=True, slots=True)
class Feedback:
    """A verdict on a run, with what the run was asked and answered."""

    run_id: str
    verdict: Verdict
    note: str | None = None
    expected: str | None = None
    prompt: str | None = None
    answer: str | None = None
    created: str = ""
    distilled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MemoryStore:
    """The store at `path`, opened on first use (reading an absent store finds nothing
    and creates no file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -- items -------------------------------------------------------------------------

    def remember(
        self,
        text: str,
        *,
        tags: Iterable[str] = (),
        kind: MemoryKind = "fact",
        pinned: bool = False,
        source_runs: Iterable[str] = (),
        embedding: Embedding | None = None,
    ) -> MemoryItem:
        """Store an item, with its `embedding` when one was computed for its text."""
        item = MemoryItem(
            id=f"mem-{secrets.token_hex(6)}",
            text=checked_text(text),
            kind=checked_kind(kind),
            tags=checked_tags(tags),
            pinned=bool(pinned),
            created=_now(),
            source_runs=[str(run) for run in source_runs],
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO items (id, text, kind, tags, pinned, created, source_runs)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item.id,
                    item.text,
                    item.kind,
                    " ".join(item.tags),
                    int(item.pinned),
                    item.created,
                    json.dumps(item.source_runs),
                ),
            )
            if embedding is not None:
                db.execute(
                    "INSERT INTO item_vectors (item_id, model, dims, vector) VALUES (?, ?, ?, ?)",
                    (
                        item.id,
                        embedding.model,
                        len(embedding.vector),
                        array("f", embedding.vector).tobytes(),
                    ),
                )
        return item

    def recall(self, query: str, *, k: int = 5, kind: MemoryKind | None = None) -> list[MemoryItem]:
        """The `k` items that best match `query` (full-text, BM25), best first."""
        checked_k(k)
        match = fts_query(query)
        db = self._read()
        if match is None or db is None:
            return []
        sql = (
            "SELECT i.* FROM items_fts JOIN items i ON i.rowid = items_fts.rowid"
            " WHERE items_fts MATCH ?"
        )
        sql, args = _of_kind(sql, [match], kind)
        with self._lock:
            return [
                _item(row)
                for row in db.execute(sql + " ORDER BY items_fts.rank LIMIT ?", [*args, k])
            ]

    def embedded(
        self, model: str, *, kind: MemoryKind | None = None
    ) -> list[tuple[MemoryItem, list[float]]]:
        """The items (of a kind) with a vector from `model`, and their vectors."""
        db = self._read()
        if db is None:
            return []
        sql = (
            "SELECT i.*, v.vector FROM item_vectors v JOIN items i ON i.id = v.item_id"
            " WHERE v.model = ?"
        )
        sql, args = _of_kind(sql, [model], kind)
        with self._lock:
            rows = db.execute(sql + " ORDER BY i.created, i.rowid", args).fetchall()
        return [(_item(row), array("f", row["vector"]).tolist()) for row in rows]

    def forget(self, item_id: str) -> bool:
        """Remove an item; False when no item has that id."""
        if self._read() is None:
            return False
        with self._write() as db:
            return db.execute("DELETE FROM items WHERE id = ?", (item_id,)).rowcount > 0

    def items(
        self, *, kind: MemoryKind | None = None, pinned: bool | None = None
    ) -> list[MemoryItem]:
        """Every item (of a kind, pinned or not), oldest first."""
        db = self._read()
        if db is None:
            return []
        sql, args = "SELECT * FROM items WHERE 1=1", list[Any]()
        if kind is not None:
            sql += " AND kind = ?"
            args.append(checked_kind(kind))
        if pinned is not None:
            sql += " AND pinned = ?"
            args.append(int(pinned))
        with self._lock:
            return [_item(row) for row in db.execute(sql + " ORDER BY created, rowid", args)]

    # -- feedback ----------------------------------------------------------------------

    def give_feedback(self, feedback: Feedback) -> Feedback:
        """Record (or replace) the verdict on a run."""
        if feedback.verdict not in ("good", "bad"):
            raise ConfigError(f"feedback is good or bad, got {feedback.verdict!r}")
        stored = Feedback(**{**feedback.to_dict(), "created": _now(), "distilled": False})
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback"
                " (run_id, verdict, note, expected, prompt, answer, created, distilled)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    stored.run_id,
                    stored.verdict,
                    stored.note,
                    stored.expected,
                    stored.prompt,
                    stored.answer,
                    stored.created,
                ),
            )
        return stored

    def feedback(self, *, distilled: bool | None = None) -> list[Feedback]:
        db = self._read()
        if db is None:
            return []
        sql, args = "SELECT * FROM feedback", list[Any]()
        if distilled is not None:
            sql += " WHERE distilled = ?"
            args.append(int(distilled))
        with self._lock:
            rows = db.execute(sql + " ORDER BY created", args).fetchall()
        return [Feedback(**{**dict(row), "distilled": bool(row["distilled"])}) for row in rows]

    def mark_distilled(self, run_ids: Iterable[str]) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE feedback SET distilled = 1 WHERE run_id = ?", [(r,) for r in run_ids]
            )

    # -- the file ----------------------------------------------------------------------

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _read(self) -> sqlite3.Connection | None:
        """The open store, or None when it does not exist yet (nothing is created)."""
        if self._db is None and not self.path.exists():
            return None
        return self._open()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._open()
        with self._lock, db:
            yield db

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is not None:
                return self._db
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open the memory store {self.path}: {exc}") from exc
            db.row_factory = sqlite3.Row
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                if row is not None and row["value"] != SCHEMA_VERSION:
                    raise ConfigError(
                        f"the memory store {self.path} has schema {row['value']}; this rlmrt "
                        f"reads schema {SCHEMA_VERSION}"
                    )
                with db:
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                    )
            except sqlite3.DatabaseError as exc:
                db.close()
                raise ConfigError(f"the memory store {self.path} is damaged: {exc}") from exc
            except BaseException:
                db.close()
                raise
            self._db = db
            return db


def _of_kind(sql: str, args: list[Any], kind: MemoryKind | None) -> tuple[str, list[Any]]:
    """`sql` over items `i`, narrowed to one kind when `kind` is given."""
    if kind is None:
        return sql, args
    return sql + " AND i.kind = ?", [*args, checked_kind(kind)]


def _item(row: sqlite3.Row) -> MemoryItem:
    return MemoryItem(
        id=row["id"],
        text=row["text"],
        kind=row["kind"],
        tags=row["tags"].split() if row["tags"] else [],
        pinned=bool(row["pinned"]),
        created=row["created"],
        source_runs=json.loads(row["source_runs"]),
    )


def checked_k(k: object) -> int:
    """How many items a recall returns: an int from 1 to 100."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 100:
        raise ConfigError(f"k must be an int from 1 to 100, got {k!r}")
    return k


def checked_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a memory's text must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise ConfigError(
            f"a memory's text is at most {MAX_TEXT_CHARS:,} characters, got {len(text):,}"
        )
    return text.strip()


def checked_kind(kind: object) -> MemoryKind:
    if kind not in KINDS:
        raise ConfigError(f"a memory's kind is one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def checked_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        tags = [tags]
    checked = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or any(c.isspace() for c in tag.strip()):
            raise ConfigError(f"a tag is one word without spaces, got {tag!r}")
        checked.append(tag.strip())
    if len(checked) > MAX_TAGS:
        raise ConfigError(f"at most {MAX_TAGS} tags, got {len(checked)}")
    return checked


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
