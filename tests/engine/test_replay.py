"""Replaying recorded runs with `ReplayClient`, after the model server is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripting import repl

from rlmrt.engine.replay import replay_run
from rlmrt.errors import ModelError, UsageError
from rlmrt.events import RunStarted
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


async def test_a_call_the_recording_cannot_answer_is_a_model_error(serve, make_rlm) -> None:
    path = _record_batched(serve, make_rlm)
    client = ReplayClient(read_events(path))
    with pytest.raises(ModelError, match="the recording has no reply for the sub-call 'hello'"):
        await client.complete([{"role": "user", "content": "hello"}])
    with pytest.raises(ModelError, match=r"the recording has no reply for .* run asked 'other'"):
        await client.complete(
            [
                {"role": "system", "content": "FINAL_VAR( ..."},
                {"role": "user", "content": "Question: other\n\nStart"},
            ]
        )
