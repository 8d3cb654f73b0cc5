"""Whole runs through the engine against the scripted server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripting import repl

from rlmrt import RLM, RunResult
from rlmrt.engine.prompts import DEFERRED_FINAL_NOTE, EMPTY_OUTPUT_NOTE, NO_CODE_FEEDBACK
from rlmrt.events import (
    Answer,
    CodeExecuted,
    Event,
    ModelCallFinished,
    RunFinished,
    RunStarted,
    SubCallFinished,
    SubCallStarted,
    TokenDelta,
)
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import ChatRequest, Reply, scripted


def test_depth_one_run_with_sub_call_and_final_in_code(serve, make_rlm) -> None:
    handler = scripted(
        root=[
            repl("print(len(context))"),
            repl("answer = llm_query('Summarise: ' + context[:5])\nprint(answer)"),
            repl("FINAL(answer)"),
        ],
        sub="a summary",
    )
    server = serve(handler)
    rlm = make_rlm(server)
    result = rlm.completion("What is this?", context="hello world")

    assert result.answer == "a summary"
    assert result.partial is False
    assert result.stop_reason == "final"
    assert result.iterations == 3
    assert result.usage.model_calls == 4
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    # llm_query sends the prompt unchanged as the one user message
    sub = [r for r in server.requests if not r.is_rlm_root]
    assert [m["role"] for m in sub[0].messages] == ["user"]
    assert sub[0].messages[0]["content"] == "Summarise: hello"
    # the model saw the output of its code
    second = [r for r in server.requests if r.is_rlm_root][1]
    assert second.messages[-1]["content"] == "Output:\n11\n"


def test_sub_system_prompt_is_sent_first(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("FINAL(llm_query('q'))")], sub="a"))
    result = make_rlm(server, sub_system_prompt="Be brief.").completion("x", context="c")
    assert result.answer == "a"
    sub = next(r for r in server.requests if not r.is_rlm_root)
    assert sub.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q"},
    ]


def test_root_model_sees_metadata_not_the_context(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(done)"]))
    context = "x" * 50_000 + "NEEDLE-7731" + "y" * 50_000
    result = make_rlm(server).completion("find the needle", context=context)
    assert result.answer == "done"
    first = server.requests[0]
    text = json.dumps(first.messages)
    assert "NEEDLE-7731" not in text
    assert "100,011" in text  # total length is reported
    assert first.messages[0]["role"] == "system"
    for name in (
        "llm_query(",
        "llm_query_batched(",
        "rlm_query(",
        "rlm_query_batched(",
        "FINAL(",
        "FINAL_VAR(",
        "SHOW_VARS(",
        "```repl",
    ):
        assert name in first.messages[0]["content"]


def test_final_as_text_without_code(serve, make_rlm) -> None:
    server = serve(scripted(root=['The answer is:\nFINAL("forty two")']))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "forty two"
    assert result.iterations == 1


def test_final_var_in_text_reads_the_variable(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("result = {'count': 3}"), "FINAL_VAR(result)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == '{"count": 3}'


def test_final_var_of_a_missing_variable_gets_feedback(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL_VAR(nothing_here)", "FINAL(ok)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "ok"
    feedback = server.requests[1].messages[-1]["content"]
    assert "names no variable" in feedback


def test_final_guessed_with_code_is_deferred(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("n = len(context)\nprint(n)") + "\nFINAL(999)", "FINAL(4)"]))
    result = make_rlm(server).completion("how long?", context="abcd")
    assert result.answer == "4"
    assert result.iterations == 2
    feedback = server.requests[1].messages[-1]["content"]
    assert feedback.startswith("Output:\n4\n")
    assert DEFERRED_FINAL_NOTE in feedback


def test_python_fences_count_and_last_expression_is_shown(serve, make_rlm) -> None:
    server = serve(scripted(root=["```python\nx = 6 * 7\nx\n```", "FINAL(x)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "x"  # FINAL(x) in text is a literal answer, not a variable
    assert "42" in server.requests[1].messages[-1]["content"]


def test_reply_without_code_or_final_gets_feedback(serve, make_rlm) -> None:
    server = serve(scripted(root=["I think I should look at it.", "FINAL(ok)"]))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "ok"
    assert server.requests[1].messages[-1]["content"] == NO_CODE_FEEDBACK


def test_empty_output_and_errors_are_reported_to_the_model(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("y = 1"), repl("1 / 0"), "FINAL(done)"]))
    make_rlm(server).completion("q", context="c")
    assert EMPTY_OUTPUT_NOTE in server.requests[1].messages[-1]["content"]
    assert "ZeroDivisionError" in server.requests[2].messages[-1]["content"]


def test_long_output_is_truncated_with_a_marker(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("print('z' * 5000)"), "FINAL(ok)"]))
    make_rlm(server, max_output_chars=1000).completion("q", context="c")
    feedback = server.requests[1].messages[-1]["content"]
    assert "[output truncated: 4,001 more characters]" in feedback
    assert len(feedback) < 1200


def test_several_blocks_run_in_order_and_stop_at_final(serve, make_rlm) -> None:
    reply = repl("a = 1\nprint('one')") + "\ntext\n" + repl("FINAL(a + 1)") + repl("print('never')")
    server = serve(scripted(root=[reply]))
    events: list[Event] = []
    rlm = make_rlm(server)
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c")
    assert result.answer == "2"
    executed = [e for e in events if isinstance(e, CodeExecuted)]
    assert [e.stdout for e in executed] == ["one\n", ""]


def test_events_rebuild_the_tree_and_the_trajectory_matches(serve, make_rlm) -> None:
    server = serve(
        scripted(root=[repl("r = llm_query_batched(['a', 'b'])\nFINAL(','.join(r))")], sub="s")
    )
    events: list[Event] = []
    rlm = make_rlm(server)
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c")
    assert result.answer == "s,s"

    ids = {e.call_id for e in events}
    for event in events:
        assert event.run_id == result.run_id
        assert event.parent_call_id is None or event.parent_call_id in ids
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    subs = [e for e in events if isinstance(e, SubCallStarted)]
    assert len(subs) == 2
    sub_models = [
        e
        for e in events
        if isinstance(e, ModelCallFinished) and e.parent_call_id in {s.call_id for s in subs}
    ]
    assert len(sub_models) == 2 and all(e.depth == 1 for e in sub_models)
    assert sum(isinstance(e, SubCallFinished) and e.ok for e in events) == 2
    assert any(isinstance(e, Answer) and e.answer == "s,s" for e in events)

    assert result.trajectory_path is not None
    recorded = read_events(result.trajectory_path)
    assert [e.to_dict() for e in recorded] == [json.loads(json.dumps(e.to_dict())) for e in events]


def test_trajectory_goes_to_rlmrt_home_by_default(serve, tmp_path: Path) -> None:
    server = serve(scripted(root=["FINAL(ok)"]))
    with RLM(model="openai/test-model", api_base=server.url, api_key="k") as rlm:
        result = rlm.completion("q", context="c")
    assert result.trajectory_path == tmp_path / "rlmrt-home" / "runs" / f"{result.run_id}.jsonl"
    assert result.trajectory_path.is_file()


def test_no_trajectory_when_disabled(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(scripted(root=["FINAL(ok)"]))
    result = make_rlm(server, save_trajectory=False).completion("q", context="c")
    assert result.trajectory_path is None
    assert not (tmp_path / "runs").exists()


def test_stream_yields_token_deltas_then_the_result(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("x = 1"), "All done.\nFINAL(streamed answer)"]))
    items = list(make_rlm(server).stream("q", context="c"))
    assert isinstance(items[-1], RunResult)
    assert items[-1].answer == "streamed answer"
    deltas = [e for e in items if isinstance(e, TokenDelta)]
    assert len(deltas) > 2
    assert "FINAL(streamed answer)" in "".join(d.text for d in deltas)
    assert all(r.stream for r in server.requests)


async def test_astream_and_acompletion_on_the_callers_loop(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(one)", "FINAL(two)"]))
    rlm = make_rlm(server)
    first = await rlm.acompletion("q", context="c")
    items = [item async for item in rlm.astream("q", context="c")]
    assert first.answer == "one"
    assert isinstance(items[-1], RunResult) and items[-1].answer == "two"
    await rlm.aclose()


async def test_completion_works_inside_a_running_loop(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(sync inside async)"]))
    assert make_rlm(server).completion("q", context="c").answer == "sync inside async"


def test_unknown_model_cost_warns_once_and_counts_zero(serve, make_rlm) -> None:
    from rlmrt.events import CostWarning

    server = serve(scripted(root=[repl("llm_query('a')"), "FINAL(ok)"], sub="x"))
    events: list[Event] = []
    rlm = make_rlm(server)
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c")
    warnings = [e for e in events if isinstance(e, CostWarning)]
    assert len(warnings) == 1 and "test-model" in warnings[0].message
    assert result.usage.cost_usd == 0.0


def test_custom_prices_give_cost(serve, make_rlm) -> None:
    server = serve(
        scripted(root=[Reply(text="FINAL(ok)", prompt_tokens=1000, completion_tokens=500)])
    )
    rlm = make_rlm(
        server, prices={"openai/test-model": {"input_per_mtok": 2.0, "output_per_mtok": 10.0}}
    )
    result = rlm.completion("q", context="c")
    assert result.usage.cost_usd == pytest.approx(1000 * 2e-6 + 500 * 10e-6)


def test_root_model_call_receives_the_whole_conversation(serve, make_rlm) -> None:
    seen: list[list[str]] = []

    def handler(request: ChatRequest) -> str:
        seen.append([m["role"] for m in request.messages])
        return repl("print(1)") if len(seen) < 3 else "FINAL(ok)"

    make_rlm(serve(handler)).completion("q", context="c")
    assert seen[0] == ["system", "user"]
    assert seen[2] == ["system", "user", "assistant", "user", "assistant", "user"]
