"""Edge cases of the loop: best-effort answers, bad sub-call arguments, settings."""

from __future__ import annotations

import pytest
from scripting import repl

from rlmrt import RLM, RLMConfig, RunResult
from rlmrt.errors import ConfigError
from rlmrt.events import Answer, Event, RunErrored
from rlmrt.testing import Reply, scripted


def _run(serve, make_rlm, root, sub=None, **settings) -> tuple[RunResult, list[Event]]:
    server = serve(scripted(root=root, sub=sub))
    rlm = make_rlm(server, **settings)
    events: list[Event] = []
    rlm.subscribe(events.append)
    return rlm.completion("q", context="c"), events


def test_best_effort_final_var_reads_the_sandbox(serve, make_rlm) -> None:
    result, events = _run(serve, make_rlm, [repl("x = 5"), "FINAL_VAR(x)"], max_iterations=1)
    assert (result.answer, result.partial, result.stop_reason) == ("5", True, "max_iterations")
    assert [e.partial for e in events if isinstance(e, Answer)] == [True]


@pytest.mark.parametrize("block", ["475562", "Final(475562)", "FINAL('475562')"])
def test_a_best_effort_block_that_only_gives_a_value_is_that_value(serve, make_rlm, block) -> None:
    result, _ = _run(serve, make_rlm, [repl("x = 5"), repl(block)], max_iterations=1)
    assert (result.answer, result.partial) == ("475562", True)


@pytest.mark.parametrize("reply", ["Final(475562)", "final('475562')"])
def test_a_best_effort_final_in_any_case_is_its_value_never_the_call_text(
    serve, make_rlm, reply
) -> None:
    result, _ = _run(serve, make_rlm, [repl("x = 5"), reply], max_iterations=1)
    assert (result.answer, result.partial) == ("475562", True)


def test_a_wrongly_cased_helper_gets_a_note(serve, make_rlm) -> None:
    server = serve(scripted(root=[repl("Final(3)"), repl("final_var('x')"), "FINAL(done)"]))
    make_rlm(server).completion("q", context="c")
    assert "(Note: the helper is called FINAL; names are case-sensitive.)" in (
        server.requests[1].last_user_text
    )
    assert "the helper is called FINAL_VAR" in server.requests[2].last_user_text


@pytest.mark.parametrize(
    ("best_effort", "error_type"),
    [
        ("FINAL_VAR(missing)", None),
        (repl("print('code cannot run now')"), "NoAnswer"),
        (Reply(status=400, text="bad"), "ModelError"),
    ],
)
def test_best_effort_without_an_answer_gives_none_never_error_text(
    serve, make_rlm, best_effort, error_type
) -> None:
    result, events = _run(serve, make_rlm, [repl("x = 1"), best_effort], max_iterations=1)
    assert (result.answer, result.partial) == (None, True)
    errors = [e.error_type for e in events if isinstance(e, RunErrored)]
    assert errors == ([error_type] if error_type else [])


def test_bad_sub_call_arguments_are_errors_in_code(serve, make_rlm) -> None:
    code = (
        "for call in (lambda: llm_query(123), lambda: llm_query_batched('one string'),\n"
        "             lambda: rlm_query_batched(['a', 'b'], ['only one'])):\n"
        "    try:\n"
        "        call()\n"
        "    except Exception as exc:\n"
        "        print(exc)\n"
    )
    result, events = _run(serve, make_rlm, [repl(code), "FINAL(done)"])
    assert result.answer == "done"
    out = next(e for e in events if e.kind == "code_executed").stdout
    assert "llm_query() prompt must be a str, got int" in out
    assert "llm_query_batched() prompts must be a list of str, got str" in out
    assert "rlm_query_batched() got 2 prompts but 1 contexts" in out


async def test_the_host_checks_sub_call_arguments_itself(serve, make_rlm) -> None:
    """The host is the authority: a sandbox that forwards anything is still checked (by
    `call_host`, the one dispatch of every sandbox kind, with the table's checks)."""
    from rlmrt.engine.bridge import RunBridge
    from rlmrt.engine.context_input import load_context
    from rlmrt.engine.run import Run
    from rlmrt.engine.tree import RunTree
    from rlmrt.events import EventBus
    from rlmrt.sandbox.base import call_host

    rlm = make_rlm(serve(scripted()))
    tree = RunTree(config=rlm.config, client=rlm.client, bus=EventBus(), run_id="r")
    run = Run(
        tree, prompt="p", context=load_context("c"), depth=0, call_id="r", parent_call_id=None
    )
    bridge = RunBridge(run)
    with pytest.raises(TypeError, match=r"llm_query\(\) prompt must be a str, got int"):
        await call_host(bridge, "llm_query", {"prompt": 1})
    with pytest.raises(TypeError, match="prompts must be a list of str, got str"):
        await call_host(bridge, "llm_query_batched", {"prompts": "x"})
    with pytest.raises(ValueError, match="got 1 prompts but 2 contexts"):
        await call_host(bridge, "rlm_query_batched", {"prompts": ["a"], "contexts": ["x", "y"]})
    with pytest.raises(TypeError, match="unexpected keyword argument 'secret'"):
        await call_host(bridge, "rlm_query", {"prompt": "p", "secret": 1})
    with pytest.raises(ValueError, match="unknown host function 'exec'"):
        await call_host(bridge, "exec", {})
    await rlm.aclose()


def test_a_child_without_an_answer_raises_in_the_parent(serve, make_rlm) -> None:
    def handler(request):
        if "Question: top" in request.messages[1]["content"]:
            if any(m["role"] == "assistant" for m in request.messages):
                return "FINAL(parent done)"
            return repl("try:\n    rlm_query('child')\nexcept Exception as exc:\n    print(exc)")
        if request.messages[-1]["content"].startswith("The run has reached a limit"):
            return Reply(status=400, text="no")
        return repl("print('child works')")

    server = serve(handler)
    rlm = make_rlm(server, max_iterations=1)
    events: list[Event] = []
    rlm.subscribe(events.append)
    result = rlm.completion("top", context="c")
    assert result.answer is None or result.answer == "parent done"
    printed = [e.stdout for e in events if e.kind == "code_executed" and e.depth == 0]
    assert "the sub-run stopped (max_iterations) without an answer" in printed[0]


def test_settings_over_a_given_config(serve, monkeypatch) -> None:
    server = serve(scripted(root=["FINAL(ok)"]))
    base = RLMConfig(model="openai/m", api_base=server.url, api_key="k", save_trajectory=False)
    rlm = RLM(config=base, max_depth=3)
    assert (rlm.config.budget.max_depth, base.budget.max_depth) == (3, 1)
    assert rlm.completion("q").answer == "ok"
    rlm.close()
    with pytest.raises(ConfigError, match=r"max_depth \(arguments\)"):
        RLM(config=base, max_depth=-2)
    # with a provider key but no model, nothing says which model to use
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(ConfigError, match="no model configured"):
        RLM()


def test_empty_prompt_is_refused(serve, make_rlm) -> None:
    rlm = make_rlm(serve(scripted()))
    with pytest.raises(ConfigError, match="non-empty string"):
        rlm.completion("  ", context="c")


async def test_stopping_a_stream_early_cancels_the_run(serve, make_rlm) -> None:
    server = serve(scripted(root=[Reply(text="FINAL(slow)", delay_s=2)]))
    rlm = make_rlm(server)
    stream = rlm.astream("q", context="c")
    first = await stream.__anext__()
    assert first.kind == "run_started"
    await stream.aclose()
    await rlm.aclose()


def test_limits_the_sandbox_cannot_enforce_are_reported(serve, make_rlm) -> None:
    from rlmrt.events import LimitNotEnforced

    # local's time and memory limits are best-effort, and it does not measure CPU
    result, events = _run(serve, make_rlm, ["FINAL(ok)"], sandbox="local", cpu_s=5)
    assert result.answer == "ok"
    notices = [e for e in events if isinstance(e, LimitNotEnforced)]
    expected = ["exec_timeout_s", "memory_mb", "cpu_s"]
    assert [(n.sandbox, n.limits) for n in notices] == [("local", expected)]
    message = notices[0].message
    assert message.startswith("the local sandbox does not guarantee every limit (exec_timeout_s:")
    assert "exec_timeout_s: best-effort: ticks in Python code" in message
    assert "memory_mb: best-effort: size estimates" in message
    assert "cpu_s: not measured per thread" in message
    # the default kind, process, reports only what this host cannot enforce (none here
    # when bubblewrap and a writable pids cgroup are present)
    from rlmrt.sandbox import Limits
    from rlmrt.sandbox.process import ProcessSandbox

    enforced = {q.name for q in ProcessSandbox.quota_report() if q.enforced}
    missing = [name for name in Limits().set_names() if name not in enforced]
    _, quiet = _run(serve, make_rlm, ["FINAL(ok)"])
    reported = [e.limits for e in quiet if isinstance(e, LimitNotEnforced)]
    assert reported == ([missing] if missing else [])
