"""`session.stream()` / `session.astream()`: a session's completion as events, then the result."""

from __future__ import annotations

from scripting import question, repl

from rlmrt.engine.rlm import RunResult
from rlmrt.events import CodeExecuted, RunFinished, RunStarted, TokenDelta
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import ChatRequest, Reply, scripted


def test_stream_yields_events_token_deltas_then_the_result(serve, make_rlm) -> None:
    server = serve(
        scripted(root=[repl("seen = len(context)\nFINAL(seen)"), repl("FINAL(seen + 1)")])
    )
    with make_rlm(server).session(context="abcd") as session:
        first = session.completion("how long?")
        items = list(session.stream("one more?", context="xy"))
        assert [h["answer"] for h in session.history] == ["4", "5"]
    result = items[-1]
    assert isinstance(result, RunResult) and result.answer == "5"
    events = items[:-1]
    assert isinstance(events[0], RunStarted) and events[0].prompt == "one more?"
    assert isinstance(events[-1], RunFinished) and events[-1].answer == "5"
    assert all(e.run_id == result.run_id for e in events)
    deltas = "".join(e.text for e in events if isinstance(e, TokenDelta))
    assert "FINAL(seen + 1)" in deltas
    assert server.requests[-1].stream and not server.requests[0].stream
    # the events are those of the trajectory, and the run records its place
    assert result.trajectory_path is not None
    recorded = read_events(result.trajectory_path)
    assert [e.kind for e in recorded] == [e.kind for e in events]
    assert events[0].session == {
        "id": session.id,
        "index": 1,
        "previous_runs": [first.run_id],
        "contexts": {
            "context": {**events[0].session["contexts"]["context"]},
            "context_1": events[0].session["contexts"]["context_1"],
        },
        "added_context": "context_1",
    }
    assert events[0].session["contexts"]["context_1"]["total_length"] == 2
    assert events[0].session["contexts"]["context"]["total_length"] == 4


async def test_astream_on_the_callers_loop(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("x = 41\nFINAL(x)"), repl("print(x + 1)"), "FINAL(done)"]))
    rlm = make_rlm(server)
    async with rlm.session(context="c") as session:
        first = await session.acompletion("set")
        items = [item async for item in session.astream("add")]
    assert first.answer == "41"
    result = items[-1]
    assert isinstance(result, RunResult) and result.answer == "done"
    [executed] = [e for e in items if isinstance(e, CodeExecuted)]
    assert executed.stdout == "42\n"  # the variable of the first completion
    assert session.history[-1]["run_id"] == result.run_id
    await rlm.aclose()


async def test_leaving_a_session_stream_early_cancels_the_run(serve, make_rlm) -> None:
    def handler(request: ChatRequest) -> Reply:
        if question(request) == "slow one":
            return Reply(text="FINAL(slow)", delay_s=2)
        return Reply(text="FINAL(next)")

    server = serve(handler)
    rlm = make_rlm(server)
    async with rlm.session(context="c") as session:
        stream = session.astream("slow one")
        first = await stream.__anext__()
        assert isinstance(first, RunStarted)
        await stream.aclose()
        # the session's lock was released: the next completion runs
        assert (await session.acompletion("next")).answer == "next"
    await rlm.aclose()
