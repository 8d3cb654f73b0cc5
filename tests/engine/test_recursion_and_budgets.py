"""Depth, batching, concurrency, budgets and model faults in whole runs."""

from __future__ import annotations

import threading

import pytest
from scripting import question, repl, turn

from rlmrt.errors import ModelAuthError
from rlmrt.events import BudgetWarning, CodeExecuted, Event, RunErrored, RunStarted
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import ChatRequest, Reply, scripted


def test_depth_two_with_batched_children_and_their_own_sandboxes(serve, make_rlm) -> None:
    """Root -> rlm_query_batched (depth 1 runs) -> rlm_query at depth 2 -> llm_query."""

    def handler(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return f"leaf({request.last_user_text})"
        asked, turns = question(request), turn(request)
        if asked == "top":
            if turns == 0:
                return repl(
                    "secret = 'root-only'\n"
                    "parts = rlm_query_batched(['part A', 'part B'], ['aaa', 'bbbb'])\n"
                    "print(parts)"
                )
            return repl("FINAL(' + '.join(parts))")
        if asked.startswith("part") and turns == 0:
            return repl(
                "SHOW_VARS()\n"
                "deeper = rlm_query('inner ' + context, context=context)\n"
                "FINAL(f'{len(context)}:{deeper}')"
            )
        if asked.startswith("inner"):
            return repl("FINAL(llm_query('leaf for ' + context))")
        raise AssertionError(f"unexpected call: {asked} turn {turns}")

    server = serve(handler)
    events: list[Event] = []
    rlm = make_rlm(server, max_depth=2)
    rlm.subscribe(events.append)
    result = rlm.completion("top", context="ctx")

    assert result.answer == "3:leaf(leaf for aaa) + 4:leaf(leaf for bbbb)"
    runs = [e for e in events if isinstance(e, RunStarted)]
    assert sorted(e.depth for e in runs) == [0, 1, 1, 2, 2]
    # the model calls of the children count in the root's usage
    assert result.usage.model_calls == len(server.requests) == 2 + 2 + 2 + 2
    # a child's SHOW_VARS does not see the root's variables: each run has its own sandbox
    shown = [
        e.stdout for e in events if isinstance(e, CodeExecuted) and e.code.startswith("SHOW_VARS")
    ]
    assert len(shown) == 2
    assert all("context" in out and "secret" not in out for out in shown)


def test_rlm_query_at_max_depth_degrades_to_llm_query(serve, make_rlm) -> None:
    server = serve(
        scripted(root=[repl("FINAL(rlm_query('sub question', context='data'))")], sub="plain")
    )
    result = make_rlm(server, max_depth=0).completion("q", context="c")
    assert result.answer == "plain"
    sub = [r for r in server.requests if not r.is_rlm_root]
    assert len(sub) == 1
    assert sub[0].messages == [{"role": "user", "content": "sub question\n\ndata"}]


def test_batched_calls_run_concurrently_and_one_failure_does_not_fail_the_batch(
    serve, make_rlm
) -> None:
    def sub(request: ChatRequest) -> Reply | str:
        if request.last_user_text == "bad":
            return Reply(status=400, text="bad request")
        return request.last_user_text.upper()

    code = (
        "prompts = ['p%d' % i for i in range(7)] + ['bad']\n"
        "out = llm_query_batched(prompts)\n"
        "failed = [str(r) for r in out if isinstance(r, Exception)]\n"
        "print(len(failed), failed[0][:40])\n"
        "FINAL(','.join(r for r in out if not isinstance(r, Exception)))"
    )
    server = serve(scripted(root=[repl(code)], sub=sub), latency_s=0.2)
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "P0,P1,P2,P3,P4,P5,P6"
    assert server.max_in_flight == 8


def test_concurrency_is_bounded_by_one_semaphore_per_tree(serve, make_rlm) -> None:
    code = "FINAL(len(llm_query_batched(['x'] * 6)))"
    server = serve(scripted(root=[repl(code)], sub="y"), latency_s=0.1)
    result = make_rlm(server, max_concurrency=2).completion("q", context="c")
    assert result.answer == "6"
    assert server.max_in_flight == 2


def test_max_iterations_asks_for_a_best_answer_and_marks_it_partial(serve, make_rlm) -> None:
    server = serve(
        scripted(root=[repl("print(1)"), repl("print(2)"), "Best guess:\nFINAL(about 3)"])
    )
    result = make_rlm(server, max_iterations=2).completion("q", context="c")
    assert result.partial is True
    assert result.stop_reason == "max_iterations"
    assert result.answer == "about 3"
    last = server.requests[-1].messages[-1]["content"]
    assert "max_iterations" in last and "best final answer" in last


def test_best_effort_reply_without_final_is_taken_as_the_answer(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("print(1)"), "  It is probably 3.  "]))
    result = make_rlm(server, max_iterations=1).completion("q", context="c")
    assert (result.answer, result.partial) == ("It is probably 3.", True)


def test_model_call_budget_stops_sub_calls_and_the_run(serve, make_rlm) -> None:
    code = (
        "try:\n"
        "    for i in range(10):\n"
        "        llm_query('q%d' % i)\n"
        "except Exception as exc:\n"
        "    print('stopped:', exc)\n"
    )
    server = serve(scripted(root=[repl(code), "FINAL(partial count)"], sub="ok"))
    events: list[Event] = []
    rlm = make_rlm(server, max_model_calls=5)
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c")
    assert (result.partial, result.stop_reason) == (True, "max_model_calls")
    assert result.answer == "partial count"
    # 1 root + 4 sub-calls, then the one best-effort call
    assert len(server.requests) == 6
    assert any(isinstance(e, BudgetWarning) and e.limit == "max_model_calls" for e in events)


def test_output_token_budget(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[
                Reply(text=repl("print(1)"), completion_tokens=600),
                Reply(text=repl("print(2)"), completion_tokens=600),
                "FINAL(best)",
            ]
        )
    )
    result = make_rlm(server, max_output_tokens=1000).completion("q", context="c")
    # the budget is spent: a closing best-answer call could only overspend it
    assert (result.stop_reason, result.answer, result.partial) == (
        "max_output_tokens",
        None,
        True,
    )
    # each request's max_tokens was what the budget had left
    assert [r.body.get("max_tokens") for r in server.requests] == [1000, 400]


def test_cost_budget_caps_max_tokens_at_a_known_price(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(x)"]))
    prices = {"test-model": {"input_per_mtok": 0.0, "output_per_mtok": 10.0}}
    make_rlm(server, max_cost_usd=0.5, prices=prices).completion("q", context="c")
    assert server.requests[0].body["max_tokens"] == 50_000  # 0.5 USD at 10 USD/Mtok


def test_no_budget_sends_no_max_tokens(serve, make_rlm) -> None:
    server = serve(scripted(root=["FINAL(x)"]))
    make_rlm(server).completion("q", context="c")
    assert "max_tokens" not in server.requests[0].body


def test_input_token_and_cost_budgets(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(text=repl("print(1)"), prompt_tokens=5000), "FINAL(best)"]))
    result = make_rlm(server, max_input_tokens=100).completion("q", context="c")
    assert result.stop_reason == "max_input_tokens"

    server = serve(
        scripted(root=[Reply(text=repl("print(1)"), prompt_tokens=1_000_000), "FINAL(b)"])
    )
    result = make_rlm(
        server,
        max_cost_usd=0.5,
        prices={"openai/test-model": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}},
    ).completion("q", context="c")
    # the first call's input overspent it (a request's input is not capped); the
    # closing best-answer call is skipped: it could only spend more
    assert (result.stop_reason, result.answer) == ("max_cost_usd", None)
    assert len(server.requests) == 1


def test_wall_time_budget_interrupts_a_slow_model_call(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(text="FINAL(late)", delay_s=5), "FINAL(in time)"]))
    # the closing call gets min(10 s, 10% of the budget) past it: 0.2 s here
    result = make_rlm(server, max_wall_time_s=2.0).completion("q", context="c")
    assert (result.stop_reason, result.partial, result.answer) == (
        "max_wall_time_s",
        True,
        "in time",
    )


def test_child_run_limits_its_own_iterations(serve, make_rlm) -> None:
    def handler(request: ChatRequest) -> str:
        if question(request) == "top":
            return repl("FINAL(rlm_query('child', context='x'))")
        if request.messages[-1]["content"].startswith("The run has reached a limit"):
            return "FINAL(child best effort)"
        return repl("print('working')")

    result = make_rlm(serve(handler), max_iterations=2).completion("top", context="c")
    assert result.answer == "child best effort"
    assert result.partial is False  # the root itself answered


def test_auth_error_is_raised_recorded_and_never_an_answer(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(status=401, text="bad key")]))
    rlm = make_rlm(server)
    events: list[Event] = []
    rlm.subscribe(events.append)
    with pytest.raises(ModelAuthError):
        rlm.completion("q", context="c")
    errored = [e for e in events if isinstance(e, RunErrored)]
    assert errored and errored[0].error_type == "ModelAuthError"
    path = next((rlm.config.trajectory.dir).glob("*.jsonl"))
    assert any(isinstance(e, RunErrored) for e in read_events(path))


def test_server_errors_are_retried(serve, make_rlm) -> None:
    count = {"n": 0}
    lock = threading.Lock()

    def handler(request: ChatRequest) -> Reply | str:
        with lock:
            count["n"] += 1
            if count["n"] <= 2:
                return Reply(status=500, text="boom")
        return "FINAL(after retries)"

    result = make_rlm(serve(handler), max_retries=3).completion("q", context="c")
    assert result.answer == "after retries"
    assert count["n"] == 3


def test_sub_call_errors_surface_in_code(serve, make_rlm) -> None:
    code = (
        "try:\n"
        "    llm_query('x')\n"
        "except Exception as exc:\n"
        "    FINAL('caught ' + repr(exc).split('(')[0])\n"
    )
    server = serve(scripted(root=[repl(code)], sub=Reply(status=404, text="no such model")))
    result = make_rlm(server).completion("q", context="c")
    assert result.answer == "caught ModelNotFoundError"


async def test_a_cancelled_run_closes_its_open_model_call(serve, make_rlm) -> None:
    import asyncio

    from rlmrt.events import ModelCallFailed

    server = serve(scripted(root=[Reply(fault="hang")]))
    rlm = make_rlm(server)
    events: list[Event] = []
    calling = asyncio.Event()

    def record(event: Event) -> None:
        events.append(event)
        if event.kind == "model_call_started":
            calling.set()

    task = asyncio.ensure_future(rlm.acompletion("q", context="c", on_event=record))
    await calling.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    failed = [e for e in events if isinstance(e, ModelCallFailed)]
    assert [(e.error_type, e.message) for e in failed] == [("CancelledError", "cancelled")]
    errored = [e for e in events if isinstance(e, RunErrored)]
    assert [(e.error_type, e.message) for e in errored] == [("CancelledError", "CancelledError")]
    assert events[-1].kind == "run_finished"
    await rlm.aclose()


def test_every_request_counts_as_a_model_call(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(status=503, text="busy"), "FINAL(ok)"]))
    result = make_rlm(server, max_retries=1).completion("q", context="c")
    assert result.answer == "ok"
    assert result.usage.model_calls == 2 == len(server.requests)
