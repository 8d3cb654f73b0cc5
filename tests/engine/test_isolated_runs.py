"""Whole RLM runs with every run's code in an isolated sandbox: a bubblewrap process, a
Docker container, or Pyodide under Deno (each needs its real part: the set-up installs
them)."""

from __future__ import annotations

import ast
import os

import pytest
from scripting import question, repl, turn

from rlmrt.events import CodeExecuted, Event, RunStarted
from rlmrt.testing import ChatRequest, Reply, scripted

ISOLATED = ["process", "docker", pytest.param("wasm", marks=pytest.mark.slow)]


@pytest.mark.parametrize("kind", ISOLATED)
def test_depth_two_with_batched_children(serve, make_rlm, monkeypatch, kind) -> None:
    monkeypatch.setenv("RLMRT_TEST_HOST_SECRET", "do-not-leak")

    def handler(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return f"leaf({request.last_user_text})"
        asked, turns = question(request), turn(request)
        if asked == "top":
            if turns == 0:
                return repl(
                    "import os\n"
                    "secret = 'root-only'\n"
                    "print(sorted(os.environ), getattr(os, 'getuid', lambda: -1)())\n"
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
    rlm = make_rlm(server, max_depth=2, sandbox=kind)
    rlm.subscribe(events.append)
    result = rlm.completion("top", context="ctx")

    assert result.answer == "3:leaf(leaf for aaa) + 4:leaf(leaf for bbbb)"
    runs = [e for e in events if isinstance(e, RunStarted)]
    assert sorted(e.depth for e in runs) == [0, 1, 1, 2, 2]
    assert {e.sandbox for e in runs} == {kind}
    assert result.usage.model_calls == len(server.requests) == 8
    executed = [e for e in events if isinstance(e, CodeExecuted)]
    first = next(e for e in executed if e.code.startswith("import os"))
    # no API key or other host variable in the sandbox, and not root
    names, uid = first.stdout.split("\n")[0].rsplit(" ", 1)
    assert "RLMRT_TEST_HOST_SECRET" not in ast.literal_eval(names)
    if kind != "wasm":  # Pyodide has no host users or variables at all
        assert set(ast.literal_eval(names)) <= {"HOME", "HOSTNAME", "LANG", "PATH", "PWD"}
        assert uid == "65534" if kind == "docker" or os.getuid() == 0 else uid != "0"
    shown = [e.stdout for e in executed if e.code.startswith("SHOW_VARS")]
    assert len(shown) == 2
    assert all("context" in out and "secret" not in out for out in shown)


@pytest.mark.parametrize("kind", ISOLATED)
def test_llm_query_batched_with_one_failure(serve, make_rlm, kind) -> None:
    def sub(request: ChatRequest) -> Reply | str:
        if request.last_user_text == "bad":
            return Reply(status=400, text="bad request")
        return request.last_user_text.upper()

    code = (
        "prompts = ['p%d' % i for i in range(5)] + ['bad']\n"
        "out = llm_query_batched(prompts)\n"
        "failed = [r for r in out if isinstance(r, Exception)]\n"
        "print(len(failed), type(failed[0]).__name__)\n"
        "FINAL(','.join(r for r in out if not isinstance(r, Exception)))"
    )
    server = serve(scripted(root=[repl(code)], sub=sub), latency_s=0.2)
    events: list[Event] = []
    rlm = make_rlm(server, sandbox=kind)
    rlm.subscribe(events.append)
    result = rlm.completion("q", context="c")
    assert result.answer == "P0,P1,P2,P3,P4"
    assert server.max_in_flight == 6  # the batch ran concurrently on the host
    executed = [e for e in events if isinstance(e, CodeExecuted)]
    assert executed[0].stdout == "1 QueryFailed\n"
