"""Real runs recorded against the scripted server, for the visualizer tests.

`record_tree` makes one run with everything the visualizer draws: a batch of three
concurrent `llm_query` calls, a child run at depth 1 that starts a child at depth 2
(which makes its own `llm_query`), and a final answer. `record_partial` stops on the
iteration limit.
"""

from __future__ import annotations

from pathlib import Path

from rlmrt import RLM
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

CONTEXT = "alpha beta gamma delta epsilon " * 12
BATCH = (
    "parts = [context[:30], context[30:60], context[60:90]]\n"
    "seen = llm_query_batched(['Summarise: ' + p for p in parts])\n"
    "print(len(seen), seen[0])"
)
CHILD = "child = rlm_query('dig into the start', context=context[:60])\nprint('child said', child)"
LEAF_CHILD = "deeper = rlm_query('deepest look', context=context[:20])\nprint(deeper)"
DEEPEST = "print(context.split()[0])\nFINAL(llm_query('name ' + context.split()[0]))"
SUB_DELAY_S = 0.3  # the batch's calls overlap on the timeline


def _turn(request: ChatRequest) -> int:
    return sum(1 for m in request.messages if m["role"] == "assistant")


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def tree_handler(request: ChatRequest) -> Reply | str:
    if not request.is_rlm_root:
        return Reply(text="sum:" + request.last_user_text[-12:], delay_s=SUB_DELAY_S)
    first = request.messages[1]["content"]
    turn = _turn(request)
    if "depth 2" in first:
        return repl(DEEPEST)
    if "depth 1" in first:
        return [repl(LEAF_CHILD), "FINAL(child done)"][min(turn, 1)]
    script = [repl(BATCH), repl(CHILD), "All seen.\nFINAL(three parts and a child)"]
    return script[min(turn, 2)]


def _rlm(server: ScriptedOpenAIServer, runs: Path, **settings: object) -> RLM:
    return RLM(
        model="openai/test-model",
        api_base=server.url,
        api_key="sk-test",
        max_retries=0,
        trajectory_dir=runs,
        **settings,
    )


def record_tree(runs: Path) -> tuple[Path, ScriptedOpenAIServer]:
    server = ScriptedOpenAIServer(tree_handler).start()
    try:
        with _rlm(server, runs, max_depth=2) as rlm:
            result = rlm.completion("What is in the parts?", context=CONTEXT)
    finally:
        server.stop()
    assert result.answer == "three parts and a child", result
    assert result.trajectory_path is not None
    return result.trajectory_path, server


def record_partial(runs: Path) -> Path:
    # one iteration allowed: the second call is the best-effort answer
    replies = iter([repl("x = 1"), "Best guess: FINAL(maybe)"])
    server = ScriptedOpenAIServer(lambda request: next(replies)).start()
    try:
        with _rlm(server, runs, max_iterations=1) as rlm:
            result = rlm.completion("Will it stop early?", context="short")
    finally:
        server.stop()
    assert result.partial, result
    assert result.trajectory_path is not None
    return result.trajectory_path


def record_error(runs: Path) -> Path:
    """A run whose first code block raises; the model recovers."""
    replies = iter([repl("print('before')\n1 / 0"), "FINAL(recovered)"])
    server = ScriptedOpenAIServer(lambda request: next(replies)).start()
    try:
        with _rlm(server, runs) as rlm:
            result = rlm.completion("Does it recover?", context="c")
    finally:
        server.stop()
    assert result.answer == "recovered", result
    assert result.trajectory_path is not None
    return result.trajectory_path
