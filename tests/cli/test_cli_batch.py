"""`rlm batch` end to end, in-process, against the scripted server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from rlmrt.testing import ChatRequest, Reply


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def model(request: ChatRequest) -> Reply | str:
    """The root answers the length of its context."""
    return repl("FINAL(str(len(context)))")


def write_dataset(folder: Path, records: list[dict[str, object]]) -> Path:
    path = folder / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_rlm_batch_prints_a_summary_and_json(rlm_cli, use_server, tmp_path: Path) -> None:
    use_server(model)
    dataset = write_dataset(
        tmp_path,
        [
            {"id": "a", "prompt": "q", "context": "abcd", "expected": "4"},
            {"id": "b", "prompt": "q", "context": "ab", "expected": "3"},
        ],
    )
    out = tmp_path / "results.jsonl"
    result = rlm_cli("batch", str(dataset), "--out", str(out), "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["ran"], summary["correct"], summary["scored"]) == (2, 1, 2)
    assert summary["accuracy"] == 0.5
    again = rlm_cli("batch", str(dataset), "--out", str(out), "-q")
    assert again.exit_code == 0, again.output
    assert "already in --out" in again.stdout and "1/2 (50.0%)" in again.stdout


def test_rlm_batch_bad_input_is_a_clear_error(rlm_cli, tmp_path: Path) -> None:
    bad = rlm_cli("batch", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o.jsonl"))
    assert bad.exit_code != 0 and "cannot read the dataset" in bad.stderr
    dataset = write_dataset(tmp_path, [{"prompt": "q"}])
    wrong = rlm_cli("batch", str(dataset), "--out", "o.jsonl", "--executor", "spark")
    assert wrong.exit_code == 2 and "--executor must be local or ray" in wrong.stderr
