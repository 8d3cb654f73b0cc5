"""The visualizer's data: run list, following a growing file, tree rows, timeline,
iterations and the HTML / Vega-Lite it is drawn from. On real recorded trajectories."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rlmrt.events import RunFinished
from rlmrt.observe.trajectory import read_events
from rlmrt.visualize import model, render
from rlmrt.visualize.runs import Follower, choice_for, list_choices


def _follow(path: Path) -> Follower:
    follower = Follower(path)
    follower.poll()
    return follower


def _finished(path: Path) -> RunFinished:
    return next(
        e for e in read_events(path) if isinstance(e, RunFinished) and e.parent_call_id is None
    )


def test_the_run_list_is_newest_first_with_status_and_partial_flag(runs) -> None:
    (runs.folder / "20000101-000000000-00000000.jsonl").write_text("")  # an empty file
    (runs.folder / "19990101-000000000-00000000.jsonl").mkdir()  # cannot be read as a file
    choices = list_choices(runs.folder)
    assert [c.path for c in choices[:2]] == [runs.partial, runs.tree]
    partial, tree, empty, unreadable = choices
    assert (partial.status, partial.partial, partial.prompt) == (
        "partial",
        True,
        "Will it stop early?",
    )
    assert (tree.status, tree.partial) == ("final", False)
    assert tree.label == f"{tree.run_id} · final · What is in the parts?"
    assert partial.label.startswith(f"{partial.run_id} · partial · partial · Will it")
    assert empty.status == "empty" and "holds no run yet" in (empty.problem or "")
    assert unreadable.status == "unreadable"
    assert "cannot read trajectory" in (unreadable.problem or "")
    assert list_choices(runs.folder / "missing") == []


def test_the_tree_has_every_call_with_the_engines_numbers(runs) -> None:
    follower = _follow(runs.tree)
    assert follower.finished
    rows = model.tree_rows(follower.tree)
    root = rows[0]
    usage = _finished(runs.tree).usage
    assert (root.kind, root.level, root.status) == ("run", 0, "ok")
    assert root.input_tokens == usage["input_tokens"]
    assert root.output_tokens == usage["output_tokens"]
    assert root.model_calls == usage["model_calls"] == 10
    events = read_events(runs.tree)
    assert root.seconds == _finished(runs.tree).ts - events[0].ts  # from the run's own events
    runs_ = [r for r in rows if r.kind == "run"]
    assert [r.title for r in runs_] == ["run", "child run (depth 1)", "child run (depth 2)"]
    assert [r.level for r in runs_] == [0, 4, 8]  # run > iteration > code > sub > child run
    subs = [r for r in rows if r.kind == "sub"]
    assert [s.title for s in subs] == ["llm_query"] * 3 + ["rlm_query", "rlm_query", "llm_query"]
    # the child runs' usage is part of their sub-call's, which is part of the root's
    child = runs_[1]
    assert child.model_calls == 4 and rows[rows.index(child) - 1].model_calls == 4
    # a finished run has no iteration left open or marked as cut off
    iterations = [r for r in rows if r.kind == "iteration"]
    assert len(iterations) == 6 and all(r.status == "ok" for r in iterations)
    assert all("did not finish" not in r.detail for r in rows)
    # the model calls' own numbers add up to the root's
    calls = [r for r in rows if r.kind == "model"]
    assert sum(r.input_tokens for r in calls) == root.input_tokens
    assert all(r.seconds is not None and r.seconds >= 0 for r in calls)


def test_the_timeline_shows_the_batch_running_at_once(runs) -> None:
    follower = _follow(runs.tree)
    bars = model.timeline(follower.tree)
    kinds = [b.kind for b in bars]
    assert kinds.count("run") == 3 and kinds.count("model") == 10
    assert kinds.count("llm_query") == 4 and kinds.count("rlm_query") == 2
    assert kinds.count("code") == 4  # two at depth 0, one at depths 1 and 2
    assert bars[0].kind == "run" and bars[0].start_s == 0.0
    assert all(b.start_s <= b.end_s <= bars[0].end_s + 1e-6 for b in bars)
    assert [b.start_s for b in bars] == sorted(b.start_s for b in bars)
    batch = [b for b in bars if b.kind == "llm_query" and b.depth == 0]
    assert len(batch) == 3 and all(a.overlaps(b) for a in batch for b in batch if a is not b)
    # what the timeline shows at once is what the model server saw at once
    assert runs.max_in_flight == 3
    assert model.peak(bars, "llm_query") == 3 == runs.max_in_flight
    assert model.peak(bars) == 3
    assert {b.depth for b in bars} == {0, 1, 2}
    deepest = next(b for b in bars if b.kind == "run" and b.depth == 2)
    assert deepest.label == "child run (depth 2): deepest look"


def test_peak_counts_overlaps_not_touching_bars() -> None:
    def bar(start: float, end: float) -> model.Bar:
        return model.Bar(
            id=f"{start}", kind="model", label="", depth=0, start_s=start, end_s=end, status="ok"
        )

    assert model.peak([]) == 0
    assert model.peak([bar(0, 1), bar(1, 2)]) == 1
    assert model.peak([bar(0, 2), bar(1, 3), bar(1.5, 1.6)]) == 3
    assert not bar(0, 1).overlaps(bar(1, 2)) and bar(0, 2).overlaps(bar(1, 3))


def test_iterations_hold_the_full_reply_code_and_output(runs) -> None:
    follower = _follow(runs.tree)
    root, child, deepest = model.run_nodes(follower.tree)
    steps = model.iterations(follower.tree, root)
    assert [s.number for s in steps] == [1, 2, 3]
    first = steps[0]
    assert first.reply.startswith("```repl\nparts = [context[:30]")
    [block] = first.code
    assert block.code.startswith("parts = [context[:30], context[30:60], context[60:90]]\n")
    assert block.stdout.startswith("3 sum:")
    assert block.error is None
    assert [s.title for s in block.sub_calls] == ["llm_query"] * 3
    assert all(s.model_calls == 1 for s in block.sub_calls)
    assert steps[2].reply == "All seen.\nFINAL(three parts and a child)" and steps[2].code == []
    [deep] = model.iterations(follower.tree, deepest)
    assert deep.code[0].stdout == "alpha\n"
    assert model.iterations(follower.tree, child)[0].code[0].stdout == "sum:name alpha\n"


def test_the_follower_reads_only_whole_new_lines(runs, tmp_path) -> None:
    lines = runs.tree.read_bytes().splitlines(keepends=True)
    growing = tmp_path / "growing.jsonl"
    growing.write_bytes(b"".join(lines[:3]) + lines[3][:10])  # the 4th line half written
    follower = Follower(growing)
    assert follower.poll() == 3
    assert follower.tree.root is not None and not follower.finished
    assert model.tree_rows(follower.tree)[0].status == "running"
    with growing.open("ab") as handle:
        handle.write(lines[3][10:] + b"not json\n" + b"".join(lines[4:]))
    assert follower.poll() == len(lines) - 3
    assert follower.finished and len(follower.events) == len(lines)
    assert follower.poll() == 0
    growing.write_bytes(lines[0])  # replaced by a shorter file: read again from the start
    assert follower.poll() == 1 and len(follower.events) == 1 and not follower.finished


def test_an_unfinished_run_is_timed_up_to_its_last_event(runs, tmp_path) -> None:
    lines = runs.tree.read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"sub_call_started"' in line)
    killed = tmp_path / "killed.jsonl"
    killed.write_text("".join(lines[: cut + 1]))
    follower = _follow(killed)
    summary = follower.summary()
    assert summary.status == "unfinished"
    rows = model.tree_rows(follower.tree)
    running = [r for r in rows if r.status == "running"]
    assert {r.kind for r in running} == {"run", "iteration", "code", "sub"}
    last = json.loads(lines[cut])["ts"]
    first = json.loads(lines[0])["ts"]
    assert rows[0].seconds == last - first
    later = model.tree_rows(follower.tree, now=last + 5)
    assert later[0].seconds == last + 5 - first
    assert choice_for("killed", killed).status == "unfinished"


def test_the_tree_html_nests_and_escapes(runs) -> None:
    rows = model.tree_rows(_follow(runs.tree).tree)
    html = render.tree_html(rows)
    assert html.count("<details") == html.count("</details>") == sum(r.has_children for r in rows)
    assert html.count('data-node="') == len(rows)
    assert "child run (depth 2)" in html and "deepest look" in html
    root = rows[0]
    assert f"{root.total_tokens:,} tok · $0 · " in html
    assert "in 11 / out 5 tok" in html  # a batched llm_query's model call
    row = model.TreeRow(
        id='x"<',
        level=0,
        kind="code",
        title="code",
        detail="<script>alert(1)</script>",
        status="error",
        input_tokens=0,
        output_tokens=0,
        model_calls=0,
        cost_usd=0.0,
        seconds=None,
        start_s=None,
        has_children=False,
    )
    escaped = render.tree_html([row])
    assert "<script>" not in escaped and "&lt;script&gt;" in escaped
    assert 'data-node="x&quot;&lt;"' in escaped and "✗" in escaped
    assert render.stats(row) == "-"


def test_the_timeline_spec_is_a_gantt_chart_of_the_bars(runs) -> None:
    bars = model.timeline(_follow(runs.tree).tree)
    spec = render.timeline_spec(bars)
    values = spec["data"]["values"]
    assert len(values) == len(bars)
    assert [(v["start"], v["end"]) for v in values] == [
        (round(b.start_s, 4), round(b.end_s, 4)) for b in bars
    ]
    assert values[0]["row"].strip().startswith("1 run: What is in the parts?")
    assert len({v["row"] for v in values}) == len(values)  # one row per call
    assert spec["encoding"]["x2"] == {"field": "end"}
    assert not re.search(r"https?://", json.dumps(spec))  # nothing to fetch
