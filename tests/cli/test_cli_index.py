"""`rlm index` and `rlm search` in-process, on a small generated folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Invoke


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "home"))
    root = tmp_path / "proj"
    root.mkdir()
    (root / "guide.md").write_text(
        "# Setup\nInstall the walrus.\n\n# Usage\nFeed the walrus fish.\n"
    )
    (root / "tool.py").write_text("def feed(walrus):\n    return walrus\n")
    (root / "other.txt").write_text("nothing here\n")
    return root


def test_index_then_refresh_counts(rlm_cli: Invoke, project: Path, tmp_path: Path) -> None:
    first = rlm_cli("index", str(project), "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["added"], data["updated"], data["removed"], data["unchanged"]) == (3, 0, 0, 0)
    assert Path(data["index"]).parent == tmp_path / "home" / "index"
    (project / "other.txt").unlink()
    text = rlm_cli("index", str(project))
    assert text.exit_code == 0
    assert "0 added, 0 updated, 1 removed, 2 unchanged" in text.stdout
    rebuilt = json.loads(rlm_cli("index", str(project), "--rebuild", "--json").stdout)
    assert rebuilt["added"] == 2


def test_search_prints_hits_with_provenance(rlm_cli: Invoke, project: Path) -> None:
    result = rlm_cli("search", "walrus fish", str(project))
    assert result.exit_code == 0, result.output
    assert "guide.md:4-5  Usage" in result.stdout
    assert "Feed the walrus fish." in result.stdout
    data = json.loads(rlm_cli("search", "walrus", str(project), "--json").stdout)
    sources = {(h["source"], h["start_line"], h["end_line"]) for h in data["hits"]}
    assert ("tool.py", 1, 2) in sources
    assert data["tokens"] == sum(h["tokens"] for h in data["hits"])
    small = json.loads(
        rlm_cli("search", "walrus", str(project), "--max-tokens", "8", "--json").stdout
    )
    assert small["tokens"] <= 8
    none = rlm_cli("search", "zzzunknown", str(project))
    assert none.exit_code == 0
    assert "no matches" in none.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "{tmp}/missing"], "error: no such folder"),
        (["search", "x", "{tmp}/missing"], "error: no such folder"),
        (["index", "{tmp}/proj/guide.md"], "error: not a folder"),
        (["search", "  ", "{tmp}/proj"], "error: the search query is empty"),
    ],
)
def test_bad_input_is_one_error_line(
    rlm_cli: Invoke, project: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = rlm_cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(message)
