"""The default offline context provider: an SQLite FTS5 index of a project folder.

Text files are cut into chunks along their structure (see `_chunking`) and ranked
with FTS5's BM25 (`bm25()`, section titles weighted up). The index lives in one
SQLite file, by default `default_home()/index/<hash of the folder>.sqlite`, and is
refreshed incrementally: a file is re-read only when its (mtime_ns, size) changed.

    index = LocalIndex("~/src/project")
    stats = index.refresh()            # added / updated / removed / unchanged
    hits = await index.search("retry budget", max_tokens=1500)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rlmrt._home import default_home
from rlmrt.context._chunking import chunk_text
from rlmrt.context.base import ContextHit, ContextProvider, estimate_tokens
from rlmrt.errors import ConfigError, ContextError

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

SCHEMA_VERSION = "1"
MAX_FILE_BYTES = 1_000_000
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv",
        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs",
    }
)  # fmt: skip
BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip",
        ".gz", ".tgz", ".bz2", ".xz", ".7z", ".tar", ".whl", ".jar", ".so", ".dylib",
        ".dll", ".exe", ".o", ".a", ".pyc", ".pyo", ".class", ".sqlite", ".db",
        ".woff", ".woff2", ".ttf", ".otf", ".mp3", ".mp4", ".mov", ".wav", ".npy",
        ".pkl", ".parquet",
    }
)  # fmt: skip
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 32

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IndexStats:
    """What one refresh did. `skipped` counts binary, too large or unreadable files."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0
    chunks: int = 0
    seconds: float = 0.0


def default_index_path(root: Path) -> Path:
    """Where the index of `root` lives unless told otherwise."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return default_home() / "index" / f"{digest}.sqlite"


def fts_query(text: str) -> str | None:
    """A safe FTS5 query for free text: every word quoted, joined with OR.

    Quoting makes FTS5 syntax in user input (`"`, `(`, `AND`, `*`, `col:`) plain
    words. Returns None when the text has no words. Raises ConfigError when empty.
    """
    if not text.strip():
        raise ConfigError("the search query is empty")
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in terms:
            terms.append(word)
    if not terms:
        return None
    return " OR ".join(f'"{t}"' for t in terms[:MAX_QUERY_TERMS])


def merge_hits(ranked: list[ContextHit], max_tokens: int, limit: int | None) -> list[ContextHit]:
    """Fill the budget by rank: overlapping or touching line ranges of one file merge
    into one hit, identical text appears once, hits that do not fit are skipped.

    When not even the best hit fits, it is returned cut down to the budget.
    """
    out: list[ContextHit] = []
    seen_text: set[str] = set()
    used = 0
    for hit in ranked:
        if limit is not None and len(out) >= limit:
            break
        if hit.text in seen_text:
            continue
        index = next(
            (
                i
                for i, kept in enumerate(out)
                if kept.source == hit.source
                and hit.start_line <= kept.end_line + 1
                and kept.start_line <= hit.end_line + 1
            ),
            None,
        )
        if index is not None:
            merged = _merge(out[index], hit)
            if used - out[index].tokens + merged.tokens <= max_tokens:
                used += merged.tokens - out[index].tokens
                out[index] = merged
                seen_text.add(hit.text)
            continue
        if used + hit.tokens <= max_tokens:
            out.append(hit)
            used += hit.tokens
            seen_text.add(hit.text)
    if not out and ranked:
        out.append(_cut(ranked[0], max_tokens))
    return out


def _merge(a: ContextHit, b: ContextHit) -> ContextHit:
    first, second = (a, b) if a.start_line <= b.start_line else (b, a)
    first_lines = first.text.split("\n")
    second_lines = second.text.split("\n")
    aligned = len(first_lines) == first.end_line - first.start_line + 1 and len(second_lines) == (
        second.end_line - second.start_line + 1
    )
    if aligned:
        overlap = max(0, first.end_line - second.start_line + 1)
        text = "\n".join(first_lines + second_lines[overlap:])
    else:
        text = first.text + "\n" + second.text
    titles = [a.title] + ([b.title] if b.title and b.title != a.title else [])
    return ContextHit(
        source=a.source,
        start_line=first.start_line,
        end_line=max(first.end_line, second.end_line),
        title=" / ".join(t for t in titles if t),
        text=text,
        score=max(a.score, b.score),
        tokens=estimate_tokens(text),
    )


def _cut(hit: ContextHit, max_tokens: int) -> ContextHit:
    text = hit.text[: max(1, max_tokens * 4)]
    if hit.text.count("\n") == hit.end_line - hit.start_line:
        end_line = hit.start_line + text.count("\n")
    else:
        end_line = hit.end_line
    return replace(hit, text=text, end_line=end_line, tokens=min(max_tokens, estimate_tokens(text)))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,
    indexed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, path TEXT NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(title, text, tokenize='unicode61');
"""


class LocalIndex(ContextProvider):
    """A BM25-ranked full-text index of the text files under `root`.

    `search()` builds the index on first use; call `refresh()` to pick up changes.
    Files larger than `max_file_bytes`, binary files, `.git`, virtual environments
    and `node_modules` are skipped.
    """

    refreshable = True

    def __init__(
        self,
        root: str | os.PathLike[str] = ".",
        *,
        index_path: str | os.PathLike[str] | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        path = Path(root).expanduser()
        if not path.exists():
            raise ContextError(f"no such folder: {path}")
        if not path.is_dir():
            raise ContextError(f"not a folder: {path}")
        if not os.access(path, os.R_OK | os.X_OK):
            raise ContextError(f"cannot read the folder {path}: permission denied")
        if max_file_bytes < 1:
            raise ConfigError(f"max_file_bytes must be >= 1, got {max_file_bytes}")
        self.root = path.resolve()
        self.index_path = (
            Path(index_path).expanduser() if index_path else default_index_path(self.root)
        )
        self.max_file_bytes = max_file_bytes
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: RLMConfig) -> LocalIndex:
        """The index of `context_root` (default: the working folder) in `context_index`."""
        return cls(config.context.root or Path.cwd(), index_path=config.context.index)

    # -- storage ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        try:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.index_path, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the index file {self.index_path}: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = self._meta(db, "schema")
            if version not in (None, SCHEMA_VERSION):
                db.executescript(
                    "DROP TABLE IF EXISTS chunks_fts; DROP TABLE IF EXISTS chunks;"
                    "DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS meta;"
                )
            db.executescript(_SCHEMA)
            owner = self._meta(db, "root")
            if owner is not None and owner != str(self.root):
                raise ConfigError(
                    f"the index file {self.index_path} belongs to {owner}, not {self.root}"
                )
            with db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (str(self.root),))
                # Section titles weigh three times the body text in the ranking.
                db.execute(
                    "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('rank', 'bm25(3.0, 1.0)')"
                )
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(
                f"the index file {self.index_path} is damaged ({exc}); delete it or use --rebuild"
            ) from exc
        except BaseException:
            db.close()
            raise
        self._db = db
        return db

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return None
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    async def aclose(self) -> None:
        self.close()

    # -- indexing --------------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative posix path, stat) of every candidate file, sorted per folder."""
        stack = [self.root]
        first = True
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                if first:
                    raise ContextError(f"cannot read the folder {folder}: {exc.strerror}") from exc
                continue  # an unreadable sub-folder is left out, like a skipped file
            first = False
            subdirs: list[Path] = []
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS and not os.path.exists(
                            os.path.join(entry.path, "pyvenv.cfg")
                        ):
                            subdirs.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        rel = Path(entry.path).relative_to(self.root).as_posix()
                        yield rel, entry.stat(follow_symlinks=False)
                except OSError:
                    continue
            stack.extend(reversed(subdirs))

    def _read(self, rel: str, size: int) -> str | None:
        """The file's text, or None for binary, too large or unreadable files."""
        if size > self.max_file_bytes or Path(rel).suffix.lower() in BINARY_SUFFIXES:
            return None
        try:
            data = (self.root / rel).read_bytes()
        except OSError:
            return None
        if b"\0" in data[:8192]:
            return None
        return data.decode("utf-8", errors="replace")

    def refresh(self, *, rebuild: bool = False, progress: Progress | None = None) -> IndexStats:
        """Bring the index up to date; only new and changed files are read.

        `rebuild` drops the index first. `progress(done, total)` is called as files
        are checked.
        """
        import time

        started = time.perf_counter()
        with self._lock:
            db = self._connect()
            if rebuild:
                with db:
                    db.execute("DELETE FROM chunks_fts")
                    db.execute("DELETE FROM chunks")
                    db.execute("DELETE FROM files")
            known = {
                row[0]: (row[1], row[2], row[3])
                for row in db.execute("SELECT path, mtime_ns, size, indexed FROM files")
            }
            found = list(self._walk())
            added = updated = unchanged = skipped = 0
            total = len(found)
            with db:
                for done, (rel, st) in enumerate(found, 1):
                    old = known.pop(rel, None)
                    if old is not None and old[0] == st.st_mtime_ns and old[1] == st.st_size:
                        if old[2]:
                            unchanged += 1
                        else:
                            skipped += 1
                    else:
                        if old is not None:
                            self._drop(db, rel)
                        text = self._read(rel, st.st_size)
                        if text is None:
                            skipped += 1
                        else:
                            self._add(db, rel, text)
                            if old is not None and old[2]:
                                updated += 1
                            else:
                                added += 1
                        db.execute(
                            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                            (rel, st.st_mtime_ns, st.st_size, int(text is not None)),
                        )
                    if progress is not None and (done % 100 == 0 or done == total):
                        progress(done, total)
                removed = 0
                for rel, (_, _, indexed) in known.items():
                    self._drop(db, rel)
                    db.execute("DELETE FROM files WHERE path = ?", (rel,))
                    removed += bool(indexed)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('built', '1')")
            (chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        return IndexStats(
            added=added,
            updated=updated,
            removed=removed,
            unchanged=unchanged,
            skipped=skipped,
            chunks=int(chunks),
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    def _drop(db: sqlite3.Connection, rel: str) -> None:
        ids = [(r[0],) for r in db.execute("SELECT id FROM chunks WHERE path = ?", (rel,))]
        if ids:
            db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", ids)
            db.execute("DELETE FROM chunks WHERE path = ?", (rel,))

    @staticmethod
    def _add(db: sqlite3.Connection, rel: str, text: str) -> None:
        for chunk in chunk_text(rel, text):
            cur = db.execute(
                "INSERT INTO chunks (path, start_line, end_line) VALUES (?, ?, ?)",
                (rel, chunk.start_line, chunk.end_line),
            )
            db.execute(
                "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)",
                (cur.lastrowid, chunk.title, chunk.text),
            )

    # -- searching -------------------------------------------------------------

    def search_sync(
        self, query: str, *, max_tokens: int = 2000, limit: int | None = None
    ) -> list[ContextHit]:
        """`search()` without the event loop (builds the index on first use)."""
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {max_tokens}")
        if limit is not None and limit < 1:
            raise ConfigError(f"limit must be >= 1, got {limit}")
        match = fts_query(query)
        if match is None:
            return []
        with self._lock:
            built = self._meta(self._connect(), "built") is not None
        if not built:
            self.refresh()
        # Enough candidates to fill the budget after merging and skipping.
        pool = max(32, 4 * (limit or 0), max_tokens // 50)
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT c.path, c.start_line, c.end_line, f.title, f.text, f.rank"
                    " FROM chunks_fts AS f JOIN chunks AS c ON c.id = f.rowid"
                    " WHERE chunks_fts MATCH ? ORDER BY f.rank LIMIT ?",
                    (match, pool),
                )
                .fetchall()
            )
        ranked = [
            ContextHit(
                source=path,
                start_line=start,
                end_line=end,
                title=title,
                text=text,
                score=-float(rank),
                tokens=estimate_tokens(text),
            )
            for path, start, end, title, text, rank in rows
        ]
        return merge_hits(ranked, max_tokens, limit)

    async def search(
        self, query: str, *, max_tokens: int = 2000, limit: int | None = None
    ) -> list[ContextHit]:
        return await asyncio.to_thread(self.search_sync, query, max_tokens=max_tokens, limit=limit)
