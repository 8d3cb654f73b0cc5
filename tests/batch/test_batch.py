"""Batch runs in this process against the scripted model: results, scoring, errors,
total budgets, resuming, contexts loaded once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rlmrt import RLMConfig
from rlmrt.batch import BatchLimits, BatchSummary, batch, is_right, read_dataset
from rlmrt.batch.local import LocalExecutor
from rlmrt.batch.runner import run_batch
from rlmrt.errors import ConfigError
from rlmrt.memory import MemoryStore
from rlmrt.testing import ChatRequest, Reply


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def model(request: ChatRequest) -> Reply | str:
    """The root answers the length of its context; a question saying FAIL fails."""
    question = str(request.messages[1]["content"])
    if "FAIL" in question:
        return Reply(status=401, error_body={"error": {"message": "no such key"}})
    return repl("FINAL(str(len(context)))")


def write_dataset(folder: Path, records: list[dict[str, object]]) -> Path:
    path = folder / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def config(serve, tmp_path: Path) -> RLMConfig:
    server = serve(model)
    return RLMConfig(
        model="openai/test-model",
        api_base=server.url,
        api_key="sk-test",
        max_retries=0,
        trajectory_dir=tmp_path / "runs",
        memory_path=tmp_path / "memory.sqlite",
    )


def test_every_record_gets_one_scored_result(config, tmp_path: Path) -> None:
    (tmp_path / "ledger.txt").write_text("x" * 138)
    dataset = write_dataset(
        tmp_path,
        [
            {"id": "a", "prompt": "how long?", "context": "abcd", "expected": "4"},
            {"id": "b", "question": "how long?", "context_path": "ledger.txt", "expected": 138},
            {"id": "c", "prompt": "how long?", "context_path": "ledger.txt", "expected": "139"},
            {"id": "d", "prompt": "how long?", "context": ["a", "b"]},
        ],
    )
    out = tmp_path / "out" / "results.jsonl"
    summary = batch(dataset, out, config=config, limits=BatchLimits(concurrency=2))
    got = {r["id"]: r for r in lines(out)}
    assert sorted(got) == ["a", "b", "c", "d"]
    assert [got[i]["answer"] for i in "abc"] == ["4", "138", "138"]
    assert [got[i]["correct"] for i in "abcd"] == [True, True, False, None]
    assert all(got[i]["run_id"] and got[i]["error"] is None for i in "abcd")
    assert all(Path(config.trajectory.dir, f"{got[i]['run_id']}.jsonl").exists() for i in "abcd")
    assert (summary.ran, summary.scored, summary.correct, summary.errors) == (4, 3, 2, 0)
    assert summary.accuracy == pytest.approx(2 / 3)
    assert summary.input_tokens > 0 and summary.not_run == 0


def test_a_failing_record_is_an_error_line_and_the_others_run(config, tmp_path: Path) -> None:
    dataset = write_dataset(
        tmp_path,
        [
            {"id": "ok", "prompt": "length?", "context": "abc"},
            {"id": "bad", "prompt": "FAIL please", "context": "abc"},
            {"id": "missing", "prompt": "length?", "context_path": "nowhere.txt"},
        ],
    )
    out = tmp_path / "results.jsonl"
    summary = batch(dataset, out, config=config)
    got = {r["id"]: r for r in lines(out)}
    assert got["ok"]["answer"] == "3"
    assert got["bad"]["answer"] is None
    assert str(got["bad"]["error"]).startswith("ModelAuthError: the API key")
    assert got["missing"]["answer"] is None
    assert str(got["missing"]["error"]).startswith("context: ")
    assert "nowhere.txt" in str(got["missing"]["error"])
    assert (summary.ran, summary.errors) == (3, 2)


def test_a_total_budget_stops_the_batch_and_a_rerun_completes_it(config, tmp_path: Path) -> None:
    records = [{"id": f"r{n}", "prompt": "length?", "context": "x" * n} for n in range(1, 7)]
    dataset = write_dataset(tmp_path, records)
    out = tmp_path / "results.jsonl"
    first = batch(
        dataset, out, config=config, limits=BatchLimits(concurrency=1, total_budget_tokens=1)
    )
    assert (first.ran, first.not_run) == (1, 5)
    assert first.stopped_by == "total_budget_tokens (1)"
    second = batch(dataset, out, config=config, limits=BatchLimits(concurrency=3))
    assert (second.already_done, second.ran, second.not_run) == (1, 5, 0)
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == sorted(r["id"] for r in records)  # each once
    assert {r["id"]: r["answer"] for r in lines(out)} == {f"r{n}": str(n) for n in range(1, 7)}


def test_a_result_line_cut_by_a_crash_runs_again(config, tmp_path: Path) -> None:
    dataset = write_dataset(
        tmp_path,
        [
            {"id": "a", "prompt": "length?", "context": "ab"},
            {"id": "b", "prompt": "q", "context": "abc"},
        ],
    )
    out = tmp_path / "results.jsonl"
    batch(dataset, out, config=config)
    whole = out.read_text().splitlines()
    out.write_text(whole[0] + "\n" + whole[1][: len(whole[1]) // 2])  # the crash
    summary = batch(dataset, out, config=config)
    assert (summary.already_done, summary.ran) == (1, 1)
    assert sorted(r["id"] for r in lines(out)) == ["a", "b"]


def test_an_output_file_that_is_not_results_is_refused(config, tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, [{"id": "a", "prompt": "q", "context": "ab"}])
    out = tmp_path / "notes.txt"
    out.write_text("my notes\nmore notes\n")
    with pytest.raises(ConfigError, match=r"notes.txt:1: not a batch result line"):
        batch(dataset, out, config=config)
    assert out.read_text() == "my notes\nmore notes\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"tasks.jsonl:2: not a JSON object"),
        ('["a"]', r"tasks.jsonl:2: a record must be a JSON object, got list"),
        ('{"context": "c"}', r"tasks.jsonl:2: 'prompt' \(or 'question'\) must be a non-empty"),
        ('{"prompt": "q", "ctx": 1}', r"tasks.jsonl:2: unknown field\(s\) ctx; known: "),
        ('{"id": "a", "prompt": "q"}', r"tasks.jsonl:2: id 'a' is already used on line 1"),
        ('{"prompt": "q", "context": "c", "context_path": "f"}', r"not both"),
    ],
)
def test_a_bad_dataset_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"id": "a", "prompt": "q"}\n' + line + "\n")
    with pytest.raises(ConfigError, match=message):
        read_dataset(path)


@pytest.mark.parametrize(
    ("answer", "expected", "match", "right"),
    [
        ("138", "138", "exact", True),
        (" 138. ", "138", "exact", True),
        ("1,380", "1380", "exact", True),
        ("138.0", "138", "exact", True),
        ("'Tyrell'", "tyrell", "exact", True),
        ("There are 138 overdue.", "138", "exact", False),
        ("There are 138 overdue.", "138", "contains", True),
        ("1138", "138", "contains", False),
        (None, "138", "exact", False),
    ],
)
def test_is_right(answer, expected, match, right) -> None:
    assert is_right(answer, expected, match) is right


class CountingExecutor(LocalExecutor):
    """The in-process executor, counting the contexts handed to it."""

    def __init__(self, config: RLMConfig) -> None:
        super().__init__(config)
        self.shared: list[object] = []

    def share(self, value: object) -> object:
        self.shared.append(value)
        return value


def test_each_context_file_is_loaded_and_handed_over_once(config, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("1" * 10)
    (tmp_path / "two.txt").write_text("2" * 20)
    records = [
        {"id": f"r{n}", "prompt": "length?", "context_path": "one.txt" if n % 3 else "two.txt"}
        for n in range(9)
    ]
    executor = CountingExecutor(config)

    async def main() -> BatchSummary:
        try:
            return await run_batch(
                read_dataset(write_dataset(tmp_path, records)),
                tmp_path / "results.jsonl",
                executor,
                BatchLimits(concurrency=3),
                config,
            )
        finally:
            await executor.aclose()

    summary = asyncio.run(main())
    assert sorted(executor.shared) == ["1" * 10, "2" * 20]
    assert summary.ran == 9
    answers = {r["id"]: r["answer"] for r in lines(tmp_path / "results.jsonl")}
    assert answers == {f"r{n}": "10" if n % 3 else "20" for n in range(9)}


def test_scored_runs_are_judged_for_learning_unless_told_not_to(config, tmp_path: Path) -> None:
    dataset = write_dataset(
        tmp_path,
        [
            {"id": "a", "prompt": "how long?", "context": "abcd", "expected": "4"},
            {"id": "b", "prompt": "how long?", "context": "ab", "expected": "3"},
            {"id": "c", "prompt": "how long?", "context": "abc"},
        ],
    )
    batch(dataset, tmp_path / "quiet.jsonl", config=config, limits=BatchLimits(feedback=False))
    assert MemoryStore(config.memory.path).feedback() == []
    batch(dataset, tmp_path / "results.jsonl", config=config)
    runs = {r["id"]: r["run_id"] for r in lines(tmp_path / "results.jsonl")}
    store = MemoryStore(config.memory.path)
    judged = {f.run_id: (f.verdict, f.expected, f.answer) for f in store.feedback()}
    store.close()
    assert judged == {runs["a"]: ("good", "4", "4"), runs["b"]: ("bad", "3", "2")}
