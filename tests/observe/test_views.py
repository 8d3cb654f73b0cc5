"""The views of the event stream in `rlmrt.observe`: the run summary on a real recorded
run (and on cut-off files), and the one-line description of every event kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmrt import RLM, RunResult
from rlmrt.engine.replay import Recording
from rlmrt.events import (
    Answer,
    Compacted,
    Event,
    RunStarted,
    RunWaited,
    TokenDelta,
    TraceLinked,
    event_from_dict,
)
from rlmrt.observe.calltree import CallTree
from rlmrt.observe.describe import describe
from rlmrt.observe.summary import read_summary, summarize
from rlmrt.testing import ScriptedOpenAIServer

PROMPT = "Shout it"


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """A real run with a sub-call and a child run, recorded to its trajectory file."""

    def reply(request) -> str:
        if not request.is_rlm_root:
            return "hi"
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        if "depth 1" in request.messages[1]["content"]:
            return "FINAL(low)"
        script = [
            repl("print(llm_query('say hi'), rlm_query('look', context=context[:3]))"),
            repl("FINAL(context.upper())"),
        ]
        return script[min(turn, 1)]

    server = ScriptedOpenAIServer(reply).start()
    folder = tmp_path_factory.mktemp("runs")
    try:
        with RLM(
            model="openai/test-model",
            api_base=server.url,
            api_key="sk-test",
            max_retries=0,
            max_depth=1,
            trajectory_dir=folder,
        ) as rlm:
            result = rlm.completion(PROMPT, context="quiet words")
    finally:
        server.stop()
    assert result.trajectory_path is not None
    return result, result.trajectory_path


def test_the_summary_agrees_with_what_the_engine_reported(recorded) -> None:
    result, path = recorded
    events, summary = read_summary(path)
    assert summary.run_id == result.run_id == path.stem
    assert (summary.prompt, summary.answer, summary.status) == (PROMPT, "QUIET WORDS", "final")
    assert summary.stop_reason == result.stop_reason == "final"
    assert summary.model_calls == result.usage.model_calls == 4  # root x2, sub, child
    assert summary.total_tokens == result.usage.input_tokens + result.usage.output_tokens
    assert summary.cost_usd == pytest.approx(result.usage.cost_usd)
    assert summary.root is not None and summary.root.parent_call_id is None
    assert summary.finished is not None and summary.finished.call_id == summary.root.call_id
    assert summary.to_dict()["partial"] is False
    # the call tree's root run is the same run, with the same totals
    tree = CallTree.of(events)
    assert tree.root is not None and tree.root.id == summary.root.call_id
    assert tree.usage(tree.root).model_calls == summary.model_calls


def test_replay_reads_the_run_the_summary_names(recorded) -> None:
    _, path = recorded
    recording = Recording.read(path)
    _, summary = read_summary(path)
    assert recording.root == summary.root
    assert recording.finished == summary.finished


def test_a_cut_off_run_is_unfinished_but_keeps_a_ready_answer(recorded, tmp_path: Path) -> None:
    _, path = recorded
    lines = path.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["kind"] != "run_finished"]
    root_id = json.loads(lines[0])["call_id"]
    assert any(
        json.loads(x)["kind"] == "answer" and json.loads(x)["call_id"] == root_id for x in kept
    )
    cut = tmp_path / path.name
    cut.write_text("\n".join(kept) + '\n{"kind": "run_fin')  # a killed writer's last line
    _, summary = read_summary(cut)
    assert summary.status == "unfinished" and summary.finished is None
    assert summary.answer == "QUIET WORDS"
    assert summary.wall_time_s is not None and summary.wall_time_s > 0
    assert summary.to_dict()["partial"] is None


def test_a_file_without_a_run_has_an_empty_summary(tmp_path: Path) -> None:
    summary = summarize([], run_id="nothing", path=tmp_path / "nothing.jsonl")
    assert summary.root is None and summary.status == "unfinished"
    assert (summary.prompt, summary.answer, summary.wall_time_s) == ("", None, None)


def test_every_event_of_a_real_run_is_described_on_one_line(recorded) -> None:
    _, path = recorded
    events = [event_from_dict(json.loads(line)) for line in path.read_text().splitlines()]
    lines: dict[str, str | None] = {}
    for event in events:  # the first event of each kind: the root run's
        lines.setdefault(type(event).__name__, describe(event))
    assert lines["RunStarted"] == (
        f'run started: "{PROMPT}" (model openai/test-model, sandbox process, str, 11 chars)'
    )
    assert describe(events[-1]) is not None
    assert str(describe(events[-1])).startswith("run finished: final, 2 iterations,")
    assert all(line is None or "\n" not in line for line in lines.values())
    assert {name for name, line in lines.items() if line is None} <= {"TokenDelta"}


def test_the_description_of_events_a_recording_may_lack() -> None:
    ids: dict[str, object] = {"run_id": "r", "call_id": "c", "parent_call_id": None, "depth": 0}
    compacted = Compacted(
        **ids, tokens_before=9_000, window_tokens=10_000, messages_before=12, summary_chars=40
    )
    assert describe(compacted) == "conversation compacted: 12 messages, 9,000 of 10,000 tok"
    partial: Event = Answer(**ids, answer="x", partial=True, source="best_effort")
    assert describe(partial) == "partial answer (best effort)"
    assert describe(TokenDelta(**ids, text="x")) is None
    waited = RunWaited(**ids, waited_s=1.5, limit=8)
    assert describe(waited) == "waited 1.50s for a run slot (max_concurrent_runs 8)"
    started = RunStarted(**ids, prompt="p", model="m", sandbox="local", context_metadata={})
    assert describe(started) == 'run started: "p" (model m, sandbox local, ?, 0 chars)'
    linked = TraceLinked(**ids, trace_id="ab" * 16, span_id="cd" * 8)
    assert describe(linked) == f"trace {'ab' * 16}"
