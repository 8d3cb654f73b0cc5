"""The local FTS5 index: ranking, chunks, budget, dedup, incremental refresh, safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlmrt.context import PROVIDERS, ContextHit
from rlmrt.context.local_index import LocalIndex, fts_query, merge_hits
from rlmrt.errors import ConfigError, ContextError


def _project(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "guide.md").write_text(
        "# Guide\nGeneral words.\n\n## Caching\nThe cache keeps answers.\n"
    )
    (root / "docs" / "budget.md").write_text(
        "# Budgets\nA budget limits tokens. The budget is shared; every budget check"
        " uses the budget of the tree.\n"
    )
    (root / "src").mkdir()
    (root / "src" / "engine.py").write_text(
        "import os\n\n\ndef run_loop(steps):\n    '''Drive the budget once.'''\n    return steps\n"
        "\n\nclass Sandbox:\n    def start(self):\n        return 'sandbox'\n"
    )
    (root / "notes.txt").write_text("nothing relevant here\n\nanother paragraph\n")
    return root


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    return LocalIndex(_project(tmp_path / "proj"), index_path=tmp_path / "ix.sqlite")


def test_registry_knows_both_providers() -> None:
    assert PROVIDERS.names() == ["local", "snipara"]
    assert PROVIDERS.load("local") is LocalIndex
    with pytest.raises(ConfigError, match="Did you mean 'local'"):
        PROVIDERS.check("locl")


def test_full_index_counts(index: LocalIndex) -> None:
    stats = index.refresh()
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (4, 0, 0, 0)
    assert stats.chunks >= 6


async def test_bm25_ranks_the_file_that_mentions_the_term_most_first(index: LocalIndex) -> None:
    hits = await index.search("budget")
    assert [h.source for h in hits][:2] == ["docs/budget.md", "src/engine.py"]
    assert hits[0].score > hits[1].score
    await index.aclose()


async def test_hits_carry_line_provenance_of_functions_and_headings(index: LocalIndex) -> None:
    (hit,) = await index.search("run_loop", limit=1)
    assert (hit.source, hit.start_line, hit.end_line, hit.title) == (
        "src/engine.py",
        4,
        6,
        "def run_loop",
    )
    (caching,) = await index.search("cache answers", limit=1)
    assert (caching.source, caching.start_line, caching.end_line, caching.title) == (
        "docs/guide.md",
        4,
        5,
        "Caching",
    )


def test_token_budget_is_respected(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(30):
        (root / f"f{i}.txt").write_text(f"needle number {i} " + "filler " * 60)
    index = LocalIndex(root, index_path=tmp_path / "m.sqlite")
    for budget in (120, 500, 2000):
        hits = index.search_sync("needle", max_tokens=budget)
        assert hits
        assert sum(h.tokens for h in hits) <= budget
    assert len(index.search_sync("needle", max_tokens=2000)) > len(
        index.search_sync("needle", max_tokens=500)
    )
    assert len(index.search_sync("needle", limit=3)) == 3
    (tiny,) = index.search_sync("needle", max_tokens=10)  # the best hit, cut down
    assert tiny.tokens <= 10
    assert len(tiny.text) <= 40


def test_identical_text_appears_once(tmp_path: Path) -> None:
    root = tmp_path / "dup"
    root.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (root / name).write_text("the license grants permission\n")
    hits = LocalIndex(root, index_path=tmp_path / "d.sqlite").search_sync("license")
    assert len(hits) == 1


def test_overlapping_ranges_of_one_file_merge() -> None:
    def hit(source: str, start: int, end: int, score: float) -> ContextHit:
        text = "\n".join(f"line {n}" for n in range(start, end + 1))
        return ContextHit(source, start, end, "", text, score, len(text) // 4)

    merged = merge_hits(
        [hit("a.py", 1, 5, 3.0), hit("b.py", 1, 2, 2.5), hit("a.py", 4, 8, 2.0)], 1000, None
    )
    assert [(h.source, h.start_line, h.end_line) for h in merged] == [
        ("a.py", 1, 8),
        ("b.py", 1, 2),
    ]
    assert merged[0].text == "\n".join(f"line {n}" for n in range(1, 9))
    assert merged[0].score == 3.0


def test_incremental_refresh_counts(index: LocalIndex) -> None:
    index.refresh()
    root = index.root
    touched = root / "notes.txt"
    touched.write_text("now it mentions zebra\n")
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    (root / "docs" / "guide.md").unlink()
    (root / "new.md").write_text("# New\nfresh zebra facts\n")
    stats = index.refresh()
    assert (stats.added, stats.updated, stats.removed, stats.unchanged) == (1, 1, 1, 2)
    assert {h.source for h in index.search_sync("zebra")} == {"notes.txt", "new.md"}
    assert index.search_sync("caching") == []  # the deleted file's chunks are gone
    again = index.refresh()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 4)
    rebuilt = index.refresh(rebuild=True)
    assert (rebuilt.added, rebuilt.unchanged) == (4, 0)


@pytest.mark.parametrize(
    "query",
    ['"', "(", "AND", "budget AND", "OR OR NOT", "*", "budget*", 'title:"x', "NEAR(a b)", "-x ^y"],
)
def test_hostile_queries_do_not_crash(index: LocalIndex, query: str) -> None:
    hits = index.search_sync(query)
    assert isinstance(hits, list)


def test_query_words_are_quoted() -> None:
    assert fts_query('budget AND "tree"') == '"budget" OR "and" OR "tree"'
    assert fts_query("(*)") is None


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_a_config_error(index: LocalIndex, query: str) -> None:
    with pytest.raises(ConfigError, match="empty"):
        index.search_sync(query)


def test_binary_huge_and_ignored_files_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("secretword\n")
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "i.js").write_text("secretword\n")
    (root / "env").mkdir()
    (root / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "env" / "lib.py").write_text("secretword = 1\n")
    (root / "blob.dat").write_bytes(b"secretword\0\1\2")
    (root / "huge.txt").write_text("secretword " * 2000)
    (root / "ok.txt").write_text("secretword once\n")
    index = LocalIndex(root, index_path=tmp_path / "s.sqlite", max_file_bytes=10_000)
    stats = index.refresh()
    assert (stats.added, stats.skipped) == (1, 2)
    assert [h.source for h in index.search_sync("secretword")] == ["ok.txt"]
    assert index.refresh().skipped == 2  # skipped files are not re-read either


def test_bad_folders_are_context_errors(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="no such folder"):
        LocalIndex(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ContextError, match="not a folder"):
        LocalIndex(tmp_path / "file.txt")
    with pytest.raises(ConfigError, match="max_tokens"):
        LocalIndex(tmp_path).search_sync("x", max_tokens=0)


def test_default_index_path_is_under_rlmrt_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "home"))
    index = LocalIndex(_project(tmp_path / "p"))
    assert index.index_path.parent == tmp_path / "home" / "index"
    assert index.index_path.suffix == ".sqlite"
    index.refresh()
    assert index.index_path.is_file()
    index.close()


def test_an_index_file_of_another_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    LocalIndex(tmp_path / "a", index_path=tmp_path / "x.sqlite").refresh()
    with pytest.raises(ConfigError, match="belongs to"):
        LocalIndex(tmp_path / "b", index_path=tmp_path / "x.sqlite").refresh()
