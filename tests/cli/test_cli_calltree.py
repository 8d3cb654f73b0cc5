"""The call tree rebuilt from events, and the plain progress lines, on a scripted event
sequence shaped like a real run (root → sub-calls → child run)."""

from __future__ import annotations

import io

from cli_events import RUN, ids, run_events
from rich.console import Console

from rlmrt.cli.calltree import render_tree
from rlmrt.cli.live import LiveTree, PlainProgress
from rlmrt.events import CodeExecuted, Event, RunFinished, SubCallStarted, TokenDelta
from rlmrt.observe.calltree import CallTree
from rlmrt.observe.describe import describe


def render_text(tree: CallTree, **kwargs) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(render_tree(tree, **kwargs))
    return console.export_text()


def feed(events: list[Event]) -> CallTree:
    return CallTree.of(events)


def test_tree_shape_and_numbers() -> None:
    tree = feed(run_events())
    text = render_text(tree)
    lines = text.splitlines()

    def line(fragment: str) -> str:
        return next(x for x in lines if fragment in x)

    def indent(fragment: str) -> int:
        found = line(fragment)
        return len(found) - len(found.lstrip(" │├└─"))

    # root: all 6 model calls (3 root + sub + child + best-effort), ledger totals
    usage = tree.ledger.total()
    assert usage.model_calls == 6  # the failed call was made: it counts (issue 14)
    assert usage.input_tokens == 100 + 50 + 30 + 100 + 100
    assert f"{usage.total_tokens:,} tok" in line("◐ run")
    assert '"Count the [bold]words[/]"' in line("run")  # markup in prompts is shown as is
    assert "str, 1,234 chars" in line("run")
    # iteration 1 holds its model call and the code block, which holds the sub-calls
    assert indent("iteration 1") < indent("model m → reply of c1") == indent("code a = llm_query")
    assert indent("code a = llm_query") < indent("✓ llm_query") == indent("✓ rlm_query")
    assert indent("✓ rlm_query") < indent("child run (depth 1)") < indent("reply of c6")
    assert "in 50 / out 5 tok" in line("reply of c3")
    assert "→ part one deep" in line("code a = llm_query")
    assert '✓ llm_query "sum part 1" → part one' in text
    assert "198 tok · $0.0030" in line("iteration 1")  # c1 + c3 + the child run c6
    # child run: own ledger total, its answer as a note
    assert "33 tok" in line("child run (depth 1)")
    assert "answer deep" in text
    # iteration 2: a code error and a failed model call (iteration 3)
    assert "✗ code 1/0 → ZeroDivisionError: division by zero" in text
    failed = line("✗ model m")
    assert "ModelConnectionError: server went away" in failed
    assert "tok" not in failed  # a failed call spent nothing we know of
    assert "code a = llm_query('sum part 1'); b = rlm_query(" in text
    assert "best-effort answer m" in text
    assert "warning 80% of max_cost_usd used" in text
    assert "partial answer (max_iterations) 42 words" in text


def test_collapsed_view_folds_finished_iterations() -> None:
    tree = feed(run_events())
    folded = render_text(tree, collapse_done=True)
    assert "iteration 1" in folded
    assert "llm_query" not in folded
    assert "best-effort answer" in folded


def test_unfinished_run_times_running_nodes() -> None:
    events = run_events(finish=False)[:-1]  # the last model call never finished
    tree = feed(events)
    last = events[-1].ts
    text = render_text(tree, now=last + 10)
    running = next(x for x in text.splitlines() if "… model m" in x)
    assert "10.00s" in running
    assert "… run" in text


def test_events_before_their_parent_are_ignored() -> None:
    tree = CallTree()
    assert "waiting" in render_text(tree)
    tree(
        CodeExecuted(
            **ids("x", "nowhere", 0),
            iteration=1,
            code="",
            stdout="",
            stderr="",
            error=None,
            duration_s=0.0,
        )
    )
    tree(SubCallStarted(**ids("y", "nowhere", 0), sub_kind="llm", prompt="p", model=None))
    assert tree.root is None


def test_plain_progress_lines() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)
    for event in run_events():
        progress(event)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[   0.00s] run started:")
    assert any("]   model call (sub) done: 50 in" in x for x in lines)  # depth 1 is indented
    assert any("] llm_query done (1.00s)" in x for x in lines)
    assert any("code ran (iteration 2, 0.01s): error: ZeroDivisionError" in x for x in lines)
    assert any("warning: 80% of max_cost_usd used" in x for x in lines)
    assert lines[-1].split("] ", 1)[1] == (
        "run finished: max_iterations, 3 iterations, 0 tok, $0, 0.00s"
    )
    assert len(lines) == len([e for e in run_events() if not isinstance(e, TokenDelta)])
    assert describe(TokenDelta(**ids("c", RUN, 0), text="x")) is None


def test_live_tree_draws_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with LiveTree(console) as live:
        for event in run_events():
            live(event)
    drawn = out.getvalue()
    assert "iteration 2" in drawn
    assert "partial answer" in drawn


def test_busy_nodes_show_their_latest_children() -> None:
    tree = CallTree()
    events = run_events(finish=False)[:2]  # the run and its first model call
    for event in events:
        tree(event)
    for n in range(12):
        tree(SubCallStarted(**ids(f"s{n}", RUN, 0), sub_kind="llm", prompt=f"p{n}", model=None))
    text = render_text(tree, max_children=3)
    assert "… 9 earlier: 0 done, 9 running, 0 failed" in text
    assert '"p11"' in text
    assert '"p8"' not in text
    assert '"p8"' in render_text(tree)


def test_calls_cut_off_by_the_end_of_the_run_are_marked() -> None:
    events = run_events(finish=False)[:2]  # the run and its first model call, started only
    started = events[1]
    tree = feed(events)
    tree(
        RunFinished(
            **ids(RUN, None, 0),
            ts=started.ts + 1,
            answer=None,
            partial=True,
            stop_reason="error",
            iterations=1,
            usage={},
        )
    )
    text = render_text(tree)
    assert "✗ model m (did not finish)" in text
    assert "✗ iteration 1" in text
    assert "✗ run" in text
    assert "…" not in text


def test_live_tree_leaves_nothing_when_the_run_never_started() -> None:
    out = io.StringIO()
    with LiveTree(Console(file=out, force_terminal=True, width=100)):
        pass
    assert out.getvalue().endswith("\x1b[1A\x1b[2K")  # the "waiting" line is erased
