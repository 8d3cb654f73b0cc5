"""Tools called from REPL code in real runs on the scripted model, from every sandbox
kind: loops, batches, argument errors named in the REPL, budgets, limits, secrets, events."""

from __future__ import annotations

import asyncio
import json

import pytest

from rlmrt import RLM
from rlmrt.events import Event, ToolCalled
from rlmrt.testing import scripted
from rlmrt.tools import Secrets, tool


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@tool(version="1.2.0")
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool
async def slow(seconds: float) -> str:
    """Sleep, then say so."""
    await asyncio.sleep(seconds)
    return "slept"


@tool
def boom(text: str) -> str:
    """Fail."""
    raise RuntimeError(f"cannot handle {text}")


@tool
def big(n: int) -> object:
    """Return n characters, as text or in a list."""
    return "x" * n if n % 2 else ["x" * n]


@tool(secrets=["TOOL_TEST_TOKEN"])
def whoami(secrets: Secrets) -> str:
    """Echo the token (a leaky tool)."""
    return f"token={secrets['TOOL_TEST_TOKEN']}"


LOOP_AND_BATCH = """\
total = 0
for i in range(5):
    total += tools.add(i, b=10)
pairs = tools.batch([("add", {"a": i, "b": i}) for i in range(4)] + [("boom", {"text": "x"})])
print(total, pairs[:4], isinstance(pairs[4], Exception), pairs[4])
try:
    tools.add("seven")
except TypeError as exc:
    print("bad call:", exc)
FINAL(total + sum(pairs[:4]))
"""


def _events(rlm: RLM) -> list[Event]:
    events: list[Event] = []
    rlm.subscribe(events.append)
    return events


@pytest.mark.parametrize("kind", ["local", "process", "docker"])
def test_code_calls_tools_in_a_loop_and_a_batch_from_every_sandbox(
    serve, make_rlm, kind: str
) -> None:
    server = serve(scripted(root=[repl(LOOP_AND_BATCH)]))
    rlm = make_rlm(server, sandbox=kind)
    events = _events(rlm)
    result = rlm.completion("add things", context="c", tools=[add, boom])
    # 0..4 + 10 each = 60; batch 0+2+4+6 = 12
    assert (result.answer, result.partial) == ("72", False)
    system = server.requests[0].messages[0]["content"]
    assert "tools.add(a: int, b: int = 2) -> int: Add two numbers." in system
    assert "tools.boom(text: str) -> str: Fail." in system
    calls = [e for e in events if isinstance(e, ToolCalled)]
    assert [c.tool for c in calls].count("add") == 5 + 4 + 1
    failed = [c for c in calls if not c.ok]
    assert {c.tool for c in failed} == {"boom", "add"}
    assert all(c.version == ("1.2.0" if c.tool == "add" else "0.1.0") for c in calls)
    assert len({c.arguments_digest for c in calls}) == len(calls)
    assert all(c.parent_call_id == result.run_id for c in calls)
    code = next(e for e in events if e.kind == "code_executed")
    assert "True ToolError: tools.boom() failed: RuntimeError: cannot handle x" in code.stdout  # type: ignore[attr-defined]
    assert (
        "bad call: tools.add() argument 'a': Input should be a valid integer, unable to parse"
        " string as an integer (got 'seven')"
    ) in code.stdout  # type: ignore[attr-defined]
    assert "Traceback" not in code.stdout  # type: ignore[attr-defined]
    # the trajectory keeps the calls
    assert result.trajectory_path is not None
    kinds = [json.loads(line)["kind"] for line in result.trajectory_path.read_text().splitlines()]
    assert kinds.count("tool_called") == len(calls)


def test_without_tools_the_prompt_is_unchanged_and_calls_say_why(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("print(tools.add(1))"), "FINAL(done)"]))
    rlm = make_rlm(server, sandbox="local")
    rlm.completion("q", context="c")
    assert "tools" not in server.requests[0].messages[0]["content"]
    assert "ToolError: no tools are offered to this run" in server.requests[1].last_user_text


def test_timeout_output_cap_and_budget(serve, make_rlm) -> None:
    code = """\
for call in (lambda: tools.slow(5), lambda: tools.big(1001), lambda: tools.big(1000)):
    try:
        out = call()
        print("ok", len(out), out[-40:] if isinstance(out, str) else "")
    except Exception as exc:
        print(type(exc).__name__, exc)
for i in range(3):
    try:
        tools.add(i)
    except Exception as exc:
        print(type(exc).__name__, exc)
"""
    server = serve(scripted(root=[repl(code), "FINAL(done)"]))
    rlm = make_rlm(
        server, sandbox="process", tool_timeout_s=0.5, tool_output_bytes=500, max_tool_calls=5
    )
    events = _events(rlm)
    result = rlm.completion("q", context="c", tools=[slow, big, add])
    out = next(e for e in events if e.kind == "code_executed").stdout  # type: ignore[attr-defined]
    assert "ToolError tools.slow() took longer than 0.5 s (tool_timeout_s)" in out
    assert "[tool output truncated: 501 more bytes]" in out
    assert "ToolError tools.big() returned 1,004 bytes of data, over the 500-byte" in out
    assert "BudgetExceededError budget exhausted: max_tool_calls=5 reached (used 5)" in out
    assert result.stop_reason == "max_tool_calls" and result.partial


def test_secrets_reach_the_tool_only_when_granted_and_never_the_sandbox(
    serve, make_rlm, monkeypatch
) -> None:
    monkeypatch.setenv("TOOL_TEST_TOKEN", "s3cr3t-value")
    code = "print(tools.whoami())"
    server = serve(scripted(root=[repl(code), "FINAL(done)", repl(code), "FINAL(done)"]))
    rlm = make_rlm(server, sandbox="local")
    rlm.completion("q", context="c", tools=[whoami])
    refused = server.requests[1].last_user_text
    assert "tools.whoami is not offered to this run: it needs secret TOOL_TEST_TOKEN" in refused
    assert "tools.whoami" not in server.requests[0].messages[0]["content"]
    granted = make_rlm(server, sandbox="local", tool_grants={"secrets": ["TOOL_TEST_TOKEN"]})
    result = granted.completion("q", context="c", tools=[whoami])
    assert "token=***" in server.requests[3].last_user_text
    assert result.trajectory_path is not None
    assert "s3cr3t-value" not in result.trajectory_path.read_text()


def test_the_live_view_and_the_progress_lines_show_tool_calls(serve, make_rlm) -> None:
    from rich.console import Console

    from rlmrt.cli.calltree import render_tree
    from rlmrt.observe.calltree import CallTree
    from rlmrt.observe.describe import describe

    server = serve(scripted(root=[repl("tools.add(1)\ntools.boom('y')"), "FINAL(done)"]))
    rlm = make_rlm(server, sandbox="local")
    events = _events(rlm)
    rlm.completion("q", context="c", tools=[add, boom])
    lines = [line for e in events if isinstance(e, ToolCalled) if (line := describe(e))]
    assert lines[0].startswith("tools.add done (")
    assert lines[1].startswith(
        "tools.boom failed: ToolError: tools.boom() failed: RuntimeError: cannot handle y ("
    )
    tree = CallTree.of(events)
    console = Console(width=200, record=True)
    console.print(render_tree(tree, now=events[-1].ts))
    shown = console.export_text()
    assert "tools.add 1.2.0 → ok" in shown
    assert "tools.boom 0.1.0 → ToolError: tools.boom() failed" in shown


_RUNNING = {"now": 0, "peak": 0}


@tool
async def gauge() -> int:
    """Count the calls running at once."""
    _RUNNING["now"] += 1
    _RUNNING["peak"] = max(_RUNNING["peak"], _RUNNING["now"])
    try:
        await asyncio.sleep(0.1)
        return _RUNNING["now"]
    finally:
        _RUNNING["now"] -= 1


def test_a_batch_runs_concurrently_under_the_trees_concurrency_limit(serve, make_rlm) -> None:
    code = 'FINAL(len(tools.batch([("gauge", {})] * 8)))'
    server = serve(scripted(root=[repl(code)]))
    rlm = make_rlm(server, sandbox="process", max_concurrency=3)
    assert rlm.completion("q", context="c", tools=[gauge]).answer == "8"
    assert _RUNNING["peak"] == 3


def test_a_sessions_completions_are_offered_their_tools(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[
                repl("kept = tools.add(1, b=2)\nFINAL(kept)"),
                repl("try:\n    tools.add(1)\nexcept Exception as exc:\n    print(exc)"),
                "FINAL(done)",
                repl("FINAL(tools.add(kept, b=10))"),
            ]
        )
    )
    rlm = make_rlm(server, sandbox="process")
    events = _events(rlm)
    with rlm.session(context="c") as session:
        assert session.completion("add 1 and 2", tools=[add]).answer == "3"
        assert session.completion("again, without tools").answer == "done"
        assert session.completion("add 10 to what you kept", tools=[add]).answer == "13"
    assert "no tools are offered to this run" in server.requests[2].last_user_text
    system = [r.messages[0]["content"] for r in server.requests]
    assert "tools.add(a: int, b: int = 2) -> int: Add two numbers." in system[0]
    assert "tools." not in system[1]
    called = [e for e in events if isinstance(e, ToolCalled)]
    assert [(e.tool, e.version, e.ok) for e in called] == [
        ("add", "1.2.0", True),
        ("add", None, False),
        ("add", "1.2.0", True),
    ]


def test_the_question_names_the_tools_and_says_when_there_is_no_context(serve, make_rlm) -> None:
    """The tools are listed in the system prompt; the first user message names them
    by the question too, and, with no `context`, says the answer is to come from them."""
    server = serve(scripted(root=[repl("FINAL(tools.add(1))"), repl("FINAL(tools.add(2))")]))
    rlm = make_rlm(server, sandbox="local")
    assert rlm.completion("add", tools=[add, boom]).answer == "3"
    assert rlm.completion("add", context="c", tools=[add]).answer == "4"
    without, given = (r.messages[1]["content"] for r in server.requests)
    assert without.endswith(
        "There is no `context`: answer by calling the tools (tools.add, tools.boom)"
        " in a ```repl block."
    )
    assert given.endswith(
        "Start by exploring `context`, or by calling the tools (tools.add), in a ```repl block."
    )
