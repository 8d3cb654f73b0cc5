"""A real three-completion session recorded against the scripted server, for replay tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scripting import question, repl, turn

from rlmrt.testing import ChatRequest, ScriptedOpenAIServer

FIRST = "alpha beta gamma delta " * 10
SECOND = "one two three"

# question -> the root model's replies, in order
ROOT: dict[str, list[str]] = {
    "count words": [
        repl("words = context.split()\ntag = llm_query('tag for ' + words[0])\nprint(len(words))"),
        repl("FINAL(f'{len(words)} words, {tag}')"),
    ],
    "and the new file?": [
        repl("more = context_1.split()\nprint(len(words) + len(more), history[0]['answer'])"),
        repl("FINAL(more[-1])"),
    ],
    "what do we know?": [
        repl("print([h['run_id'][-8:] for h in history], tag, len(more))"),
        repl("FINAL(rlm_query('short form of ' + tag, context=more[0]))"),
    ],
}


def handler(request: ChatRequest) -> str:
    if not request.is_rlm_root:
        return "echo:" + request.last_user_text[:24]
    text = request.messages[1]["content"]
    if "depth 1" in text:
        return "FINAL(child)" if turn(request) else repl("print(context)\nFINAL(context * 2)")
    return ROOT[question(request)][turn(request)]


@dataclass
class SessionRecording:
    paths: list[Path]
    run_ids: list[str]
    answers: list[str | None]


def record_session(server: ScriptedOpenAIServer, make_rlm) -> SessionRecording:
    """Three completions in one session; the second adds `context_1`."""
    rlm = make_rlm(server, max_depth=1)
    with rlm.session(context=FIRST) as session:
        results = [
            session.completion("count words"),
            session.completion("and the new file?", context=SECOND),
            session.completion("what do we know?"),
        ]
    paths = [r.trajectory_path for r in results]
    assert all(p is not None for p in paths)
    return SessionRecording(
        [p for p in paths if p is not None],
        [r.run_id for r in results],
        [r.answer for r in results],
    )
