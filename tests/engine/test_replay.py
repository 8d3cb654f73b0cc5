"""Replaying recorded runs with `ReplayClient`, after the model server is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripting import question, repl, turn

from rlmrt import RLM
from rlmrt.engine.replay import replay_run
from rlmrt.errors import ModelError, UsageError
from rlmrt.events import ModelCallFinished, RunStarted
from rlmrt.llm.replay import ReplayClient
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import ChatRequest, scripted

CONTEXT = "alpha beta gamma delta " * 20


def _record_batched(serve, make_rlm) -> Path:
    server = serve(
        scripted(
            root=[
                repl("parts = [context[:40], context[40:80], context[:40]]\nprint(len(parts))"),
                repl("res = llm_query_batched(['Count: ' + p for p in parts])\nprint(res)"),
                repl("FINAL(' / '.join(res))"),
            ],
            sub=lambda req: f"{len(req.last_user_text)} chars",
        )
    )
    result = make_rlm(server).completion("count the parts", context=CONTEXT)
    server.stop()  # the replay must not need it
    assert result.trajectory_path is not None
    return result.trajectory_path


def _record_depth_two(serve, make_rlm) -> Path:
    def handler(req: ChatRequest) -> str:
        if not req.is_rlm_root:
            return "leaf:" + req.last_user_text[:10]
        text = req.messages[1]["content"]
        done = len(req.messages) > 2
        if "depth 2" in text:
            return "FINAL(deepest)" if done else repl("print(context)\nFINAL(llm_query(context))")
        if "depth 1" in text:
            if done:
                return repl("FINAL(child)")
            return repl("child = rlm_query('go deeper', context=context[:12])\nprint(child)")
        if done:
            return repl("FINAL(top)")
        return repl("top = rlm_query('look at the first half', context=context[:60])\nprint(top)")

    server = serve(handler)
    result = make_rlm(server, max_depth=2).completion("nested", context=CONTEXT)
    server.stop()
    assert result.answer == "leaf:alpha beta"
    depths = {e.depth for e in read_events(result.trajectory_path) if isinstance(e, RunStarted)}
    assert depths == {0, 1, 2}
    return result.trajectory_path


def test_a_batched_run_replays_identically(serve, make_rlm, tmp_path) -> None:
    path = _record_batched(serve, make_rlm)
    report = replay_run(path, CONTEXT)
    assert report.identical, report.differences
    assert report.executions == 3
    assert report.replayed_answer == report.recorded_answer == "47 chars / 47 chars / 47 chars"
    assert report.result.usage.model_calls == 6


def test_a_depth_two_run_replays_identically(serve, make_rlm) -> None:
    path = _record_depth_two(serve, make_rlm)
    report = replay_run(path, CONTEXT)
    assert report.identical, report.differences
    assert report.executions == 5  # two at depths 0 and 1, one at depth 2
    assert report.replayed_answer == "leaf:alpha beta"


def test_a_tampered_stdout_is_reported(serve, make_rlm) -> None:
    path = _record_batched(serve, make_rlm)
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        data = json.loads(line)
        if data["kind"] == "code_executed" and data["stdout"] == "3\n":
            data["stdout"] = "4\n"
            lines[i] = json.dumps(data)
    path.write_text("\n".join(lines) + "\n")
    report = replay_run(path, CONTEXT)
    assert not report.identical
    [diff] = report.differences
    assert (diff.field, diff.recorded, diff.replayed, diff.index) == ("stdout", "4\n", "3\n", 1)
    assert diff.prompt == "count the parts" and diff.depth == 0


def test_a_different_context_is_a_usage_error(serve, make_rlm) -> None:
    path = _record_batched(serve, make_rlm)
    with pytest.raises(UsageError, match=r"recorded str of 460 characters, given str of 5 char"):
        replay_run(path, "other")
    with pytest.raises(UsageError, match="given none of 0 characters"):
        replay_run(path, None)


def _without(path: Path, drop) -> None:
    """Rewrite the trajectory at `path` without the events `drop(data)` picks."""
    lines = [line for line in path.read_text().splitlines() if not drop(json.loads(line))]
    path.write_text("\n".join(lines) + "\n")


def test_a_call_the_recording_cannot_answer_is_a_model_error(serve, make_rlm) -> None:
    path = _record_batched(serve, make_rlm)
    finals = [e for e in read_events(path) if "FINAL(" in getattr(e, "response", "")]
    _without(path, lambda data: data.get("call_id") == finals[0].call_id)
    with pytest.raises(
        ModelError,
        match=r"the recording has no reply for model call 3 of the run asked 'count the parts'",
    ):
        replay_run(path, CONTEXT)


def test_a_sub_call_the_recording_cannot_answer_fails_in_the_code(serve, make_rlm) -> None:
    server = serve(
        scripted(
            root=[repl("print(llm_query_batched(['one', 'two']))"), "FINAL(done)"],
            sub=lambda req: req.last_user_text.upper(),
        )
    )
    path = make_rlm(server).completion("shout", context=CONTEXT).trajectory_path
    assert path is not None
    two = next(
        e for e in read_events(path) if isinstance(e, ModelCallFinished) and e.response == "TWO"
    )
    _without(path, lambda data: data.get("call_id") == two.call_id)
    report = replay_run(path, CONTEXT)
    [diff] = report.differences
    assert diff.field == "stdout" and diff.recorded == "['ONE', 'TWO']\n"
    assert diff.replayed is not None and diff.replayed.startswith("['ONE', ")
    assert "the recording has no reply for the sub-call 'two'" in diff.replayed


async def test_the_replay_client_answers_only_a_replayed_run(serve, make_rlm) -> None:
    client = ReplayClient(read_events(_record_batched(serve, make_rlm)))
    with pytest.raises(ModelError, match="answers the model calls of a replayed run only"):
        await client.complete([{"role": "user", "content": "hello"}])


LOG = "\n".join(
    f"2026-01-{day:02d} [{level}] service-{day % 3}: request {day}"
    for day, level in enumerate(["INFO", "ERROR", "WARN", "INFO", "ERROR", "WARN", "INFO"], 1)
)


def test_a_small_profile_run_replays_identically(serve, tmp_path) -> None:
    """The small profile's first prompt holds peek lines found in the context: a replay
    must not need to rebuild it (it did, and failed at the second call)."""

    def handler(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return "hi"
        asked, turns = question(request), turn(request)
        if asked.startswith("How many WARN"):
            replies = [repl("print(sum('[WARN]' in l for l in context.splitlines()))"), "FINAL(2)"]
            return replies[turns]
        replies = [
            repl(
                "errors = [l for l in context.splitlines() if '[ERROR]' in l]\nprint(len(errors))"
            ),
            repl("warn = rlm_query('How many WARN lines?', context=context)\nprint(warn)"),
            repl("print(llm_query('say hi'))"),
            "FINAL(2 errors, 2 warnings)",
        ]
        return replies[turns]

    server = serve(handler)
    # a small model's name: the replay, run with the recorded model, uses the profile too
    with RLM(
        model="openai/coder-1.5b",
        api_base=server.url,
        api_key="sk-test",
        max_retries=0,
        trajectory_dir=tmp_path / "runs",
    ) as rlm:
        recorded = rlm.completion("How many lines hold [ERROR]?", context=LOG)
    server.stop()  # the replay must not need it
    assert recorded.answer == "2 errors, 2 warnings"
    first = server.requests[0].messages[1]["content"]
    assert "share words with the question" in first and "[ERROR] service-2" in first
    assert recorded.trajectory_path is not None

    report = replay_run(recorded.trajectory_path, LOG)
    assert report.identical, report.differences
    assert report.executions == 4  # three at the root, one in the child
    assert report.replayed_answer == "2 errors, 2 warnings"
