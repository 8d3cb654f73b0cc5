"""The Streamlit page, run by Streamlit's `AppTest` on recorded trajectories."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("streamlit", reason="the visualizer is the `viz` extra")

import pyarrow as pa  # a dependency of streamlit
from recordings import record_error
from streamlit.testing.v1 import AppTest

import rlmrt.visualize
from rlmrt.events import RunFinished
from rlmrt.observe.trajectory import read_events

APP = Path(rlmrt.visualize.__file__).parent / "app.py"  # importing it would run it


@pytest.fixture
def page(monkeypatch):
    def start(folder: Path, run: str | None = None) -> AppTest:
        monkeypatch.setenv("RLMRT_VISUALIZE_DIR", str(folder))
        at = AppTest.from_file(str(APP), default_timeout=60)
        if run is not None:
            at.query_params["run"] = run
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return start


def _html(at: AppTest) -> list[str]:
    """The page's st.html blocks. Through `get`, since `AppTest.html` is newer than the
    last Streamlit that runs on Python 3.10 (1.65 returns them as unknown elements)."""
    return [str(element.value) for element in at.get("html")]


def _tree(at: AppTest) -> str:
    [tree] = [html for html in _html(at) if "rlm-tree" in html]
    return tree


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_an_empty_runs_folder_says_so(page, tmp_path) -> None:
    at = page(tmp_path / "nothing-here")
    [info] = at.info
    assert f"No runs in {tmp_path / 'nothing-here'} yet" in info.value
    assert not _html(at) and not at.sidebar.selectbox


def test_the_newest_run_is_shown_with_its_tree_and_numbers(page, runs) -> None:
    at = page(runs.folder)
    picker = at.sidebar.selectbox[0]
    assert picker.options[0].startswith(f"{runs.partial.stem} · partial · partial · Will it")
    assert picker.options[1] == f"{runs.tree.stem} · final · What is in the parts?"
    assert at.query_params["run"] == runs.partial.stem
    assert _metrics(at)["status"] == "partial (max_iterations)"
    assert "partial answer (max_iterations)" in _tree(at)


def test_the_chosen_run_shows_tree_timeline_and_code(page, runs) -> None:
    at = page(runs.folder)
    at.sidebar.selectbox[0].select_index(1).run()
    assert not at.exception
    assert at.query_params["run"] == runs.tree.stem
    finished = next(
        e for e in read_events(runs.tree) if isinstance(e, RunFinished) and e.parent_call_id is None
    )
    tokens = finished.usage["input_tokens"] + finished.usage["output_tokens"]
    metrics = _metrics(at)
    assert metrics["status"] == "final"
    assert metrics["model calls"] == "10"
    assert metrics["tokens"] == f"{tokens:,}"
    assert metrics["cost"] == "$0"
    tree = _tree(at)
    assert f'data-node="{runs.tree.stem}"' in tree
    for name in ("child run (depth 1)", "child run (depth 2)", "llm_query", "rlm_query"):
        assert name in tree
    assert f"{tokens:,} tok · $0 · " in tree
    assert tree.count('class="sub"') == 6
    # the timeline: one bar per call, the batch at once
    [chart] = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["mark"]["type"] == "bar" and spec["encoding"]["x2"] == {"field": "end"}
    bars = pa.ipc.open_stream(chart.proto.data.data).read_all().to_pylist()
    assert len(bars) == 23
    assert [b["kind"] for b in bars].count("llm_query") == 4
    assert any(
        "23 calls; at most 3 model call(s) at once, 3 llm_query and 2 rlm_query" in c.value
        for c in at.caption
    )
    # each iteration's reply, code and output
    codes = [c.value for c in at.code]
    assert "three parts and a child" in codes  # the answer
    assert any(c.startswith("parts = [context[:30]") for c in codes)
    assert any(c.startswith("3 sum:") for c in codes)
    assert [e.label.split(" · ")[0] for e in at.expander] == [
        "iteration 1",
        "iteration 2",
        "iteration 3",
    ]


def test_a_child_run_node_shows_its_own_iterations(page, runs) -> None:
    at = page(runs.folder, run=runs.tree.stem)
    node = next(s for s in at.selectbox if s.label == "Run node")
    assert node.options == [
        "run: What is in the parts?",
        "child run (depth 1): dig into the start",
        "child run (depth 2): deepest look",
    ]
    node.select_index(2).run()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert any(c.startswith("print(context.split()[0])") for c in codes)
    assert "alpha" in codes  # its output (st.code drops the last newline)
    assert [e.label.split(" · ")[0] for e in at.expander] == ["iteration 1"]


def test_a_run_still_being_written_is_followed(page, runs, tmp_path) -> None:
    lines = runs.tree.read_text().splitlines(keepends=True)
    folder = tmp_path / "live"
    folder.mkdir()
    growing = folder / runs.tree.name
    cut = next(i for i, line in enumerate(lines) if '"sub_call_started"' in line)
    growing.write_text("".join(lines[: cut + 1]))
    at = page(folder)
    assert _metrics(at)["status"] == "unfinished"
    assert any("has not finished" in i.value for i in at.info)
    assert "child run (depth 1)" not in _tree(at)
    assert at.sidebar.selectbox[0].options[0].endswith("· unfinished · What is in the parts?")
    # more events arrive: the next rerun (the fragment's poll) shows them
    middle = next(i for i, line in enumerate(lines) if '"depth": 2' in line)
    with growing.open("a") as handle:
        handle.write("".join(lines[cut + 1 : middle]))
    at.run()
    assert not at.exception
    assert "child run (depth 1)" in _tree(at) and "child run (depth 2)" not in _tree(at)
    assert _metrics(at)["status"] == "unfinished"
    with growing.open("a") as handle:
        handle.write("".join(lines[middle:]))
    at.run()
    assert not at.exception
    assert "child run (depth 2)" in _tree(at)
    assert _metrics(at)["status"] == "final"
    assert not any("has not finished" in i.value for i in at.info)


def test_unreadable_and_empty_files_get_a_clear_message(page, runs) -> None:
    (runs.folder / "30000101-000000000-00000000.jsonl").mkdir()
    at = page(runs.folder)
    [error] = at.error
    assert error.value.startswith("Cannot show this run: cannot read trajectory")
    empty = runs.folder / "20991231-000000000-00000000.jsonl"
    empty.write_text('{"kind": "from_the_future", "v": 99}\n')
    at = page(runs.folder, run=empty.stem)
    [warning] = at.warning
    assert "holds no run yet" in warning.value


def test_a_code_error_is_shown_with_the_output_before_it(page, tmp_path) -> None:
    folder = tmp_path / "errors"
    record_error(folder)
    at = page(folder)
    [error] = at.error
    assert "ZeroDivisionError" in error.value
    assert "before" in [c.value for c in at.code]
    assert "✗" in _tree(at) and "ZeroDivisionError" in _tree(at)


def test_without_a_folder_the_settings_trajectory_dir_is_used(page, runs, monkeypatch) -> None:
    home_runs = Path(os.environ["RLMRT_HOME"]) / "runs"  # set for every test by conftest
    home_runs.mkdir(parents=True)
    (home_runs / runs.tree.name).write_bytes(runs.tree.read_bytes())
    monkeypatch.delenv("RLMRT_VISUALIZE_DIR", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.sidebar.caption[0].value == str(home_runs)
    assert at.sidebar.selectbox[0].options == [f"{runs.tree.stem} · final · What is in the parts?"]
