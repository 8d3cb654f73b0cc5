"""Sessions: several completions over one persistent sandbox, against the scripted server."""

from __future__ import annotations

import pytest
from scripting import repl

from rlmrt.errors import SandboxClosedError
from rlmrt.events import CodeExecuted, Event, RunStarted
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import scripted


def test_variables_contexts_and_history_persist_across_completions(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[
                repl("total = len(context)\nFINAL(total)"),
                repl("print(total, context_1, history)"),
                repl("FINAL(f'{total}+{len(context_1)}|{history[0][\"answer\"]}')"),
            ]
        )
    )
    rlm = make_rlm(server)
    with rlm.session(context="hello world") as session:
        first = session.completion("how long?")
        second = session.completion("and this one?", context="abc")
        assert first.answer == "11"
        assert second.answer == "11+3|11"
        assert first.run_id != second.run_id
        assert first.trajectory_path != second.trajectory_path
        assert session.history == [
            {"prompt": "how long?", "answer": "11", "partial": False, "run_id": first.run_id},
            {
                "prompt": "and this one?",
                "answer": "11+3|11",
                "partial": False,
                "run_id": second.run_id,
            },
        ]
    # the code of the second run saw the first run's variable, context_1 and history
    assert second.trajectory_path is not None
    executed = [e for e in read_events(second.trajectory_path) if isinstance(e, CodeExecuted)]
    assert executed[0].error is None
    assert executed[0].stdout.startswith("11 abc [{'prompt': 'how long?', 'answer': '11'")
    # each completion is a run of its own, with `context` (the first) as its metadata
    started = [e for e in read_events(second.trajectory_path) if isinstance(e, RunStarted)]
    assert started[0].context_metadata["total_length"] == 11
    # the root model is told about the contexts and `history`
    metadata = [r for r in server.requests if r.is_rlm_root][1].messages[1]["content"]
    assert "- context: str, 11 characters" in metadata
    assert "- context_1: str, 3 characters" in metadata
    assert "`history`" in metadata and "1 earlier exchange" in metadata


def test_use_after_close_is_a_clear_error(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(a)"]))
    session = make_rlm(server).session(context="c")
    assert session.completion("q").answer == "a"
    session.close()
    session.close()  # idempotent
    assert session.closed
    with pytest.raises(SandboxClosedError, match="session is closed"):
        session.completion("again")


def test_a_session_without_completions_closes_cleanly(serve, make_rlm) -> None:
    server = serve(scripted(root=[]))
    with make_rlm(server).session(context="c") as session:
        pass
    assert session.closed and server.requests == []


async def test_async_session(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[repl("seen = context.upper()\nFINAL(seen)"), repl("FINAL(seen + context_1)")]
        )
    )
    rlm = make_rlm(server)
    async with rlm.session(context="ab") as session:
        first = await session.acompletion("upper?")
        second = await session.acompletion("append", context="cd")
    assert (first.answer, second.answer) == ("AB", "ABcd")
    assert [h["answer"] for h in session.history] == ["AB", "ABcd"]
    with pytest.raises(SandboxClosedError):
        await session.acompletion("more")
    await rlm.aclose()  # the client's connections belong to this test's loop


def test_sub_calls_in_a_later_completion_reach_the_run_in_progress(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=["FINAL(one)", repl("FINAL(llm_query('hi ' + history[0]['answer']))")],
            sub=lambda req: "echo: " + req.last_user_text,
        )
    )
    with make_rlm(server).session(context="c") as session:
        session.completion("first")
        second = session.completion("second")
    assert second.answer == "echo: hi one"
    assert second.usage.model_calls == 2


async def test_code_runs_directly_in_a_session_between_completions(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("FINAL(base * 2)")]))
    rlm = make_rlm(server)
    seen: list[Event] = []
    async with rlm.session(context="abc") as session:
        direct = await session.aexecute("base = len(context)\nprint(base)", on_event=seen.append)
        answer = await session.acompletion("double it")
        asked = await session.aexecute("llm_query('hi')")
        after = await session.aexecute("print(history[0]['answer'])")
    await rlm.aclose()
    assert (direct.stdout, answer.answer, after.stdout) == ("3\n", "6", "6\n")
    assert asked.error is not None
    assert "llm_query is not available in code run directly in a session" in asked.error
    [event] = seen
    assert isinstance(event, CodeExecuted) and event.stdout == "3\n"
    assert (event.run_id, event.iteration, event.depth) == (f"session-{session.id}", 1, 0)
    assert session.executions == 3
    assert len(server.requests) == 1  # the direct code asked no model
