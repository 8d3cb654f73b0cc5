"""`rlm replay` in-process: recorded replies, tampered recordings, another model."""

from __future__ import annotations

import json
from pathlib import Path

from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def _record(rlm_cli, use_server, tmp_path: Path) -> tuple[dict, Path]:
    context = tmp_path / "notes.txt"
    context.write_text("one two three four five six")
    server = use_server(
        scripted(
            root=[
                repl("words = context.split()\nprint(len(words))"),
                repl(
                    "r = llm_query_batched(['first: ' + words[0], 'last: ' + words[-1]])\nprint(r)"
                ),
                repl("FINAL(r[1])"),
            ],
            sub=lambda req: req.last_user_text.upper(),
        )
    )
    result = rlm_cli("run", "What is the last word?", "--context", str(context), "--json", "-q")
    assert result.exit_code == 0, result.output
    server.stop()
    return json.loads(result.stdout), context


def test_replay_of_an_untouched_run_is_identical(rlm_cli, use_server, tmp_path) -> None:
    recorded, context = _record(rlm_cli, use_server, tmp_path)
    result = rlm_cli("replay", recorded["run_id"], "--context", str(context))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("3 code execution(s), identical\n")
    as_json = rlm_cli("replay", recorded["run_id"][-8:], "-c", str(context), "--json")
    data = json.loads(as_json.stdout)
    assert data["identical"] is True and data["differences"] == []
    assert data["replayed_answer"] == data["recorded_answer"] == "LAST: SIX"


def test_replay_reports_a_tampered_output_and_exits_1(rlm_cli, use_server, tmp_path) -> None:
    recorded, context = _record(rlm_cli, use_server, tmp_path)
    path = Path(recorded["trajectory_path"])
    path.write_text(path.read_text().replace('"stdout": "6\\n"', '"stdout": "7\\n"'))
    result = rlm_cli("replay", recorded["run_id"], "--context", str(context))
    assert result.exit_code == 1
    assert (
        "difference in stdout of execution 1 (depth 0, 'What is the last word?')" in result.stdout
    )
    assert "recorded: 7\n" in result.stdout and "replayed: 6\n" in result.stdout
    assert result.stdout.endswith("1 difference(s)\n")


def test_replay_with_the_wrong_context_is_a_usage_error(rlm_cli, use_server, tmp_path) -> None:
    recorded, _ = _record(rlm_cli, use_server, tmp_path)
    other = tmp_path / "other.txt"
    other.write_text("short")
    result = rlm_cli("replay", recorded["run_id"], "--context", str(other))
    assert result.exit_code == 2
    assert "recorded str of 27 characters, given str of 5 characters" in result.stderr
    missing = rlm_cli("replay", "no-such-run")
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.stderr


def test_replay_on_another_model_compares_answers(rlm_cli, use_server, tmp_path) -> None:
    recorded, context = _record(rlm_cli, use_server, tmp_path)
    server = use_server(scripted(root=[repl("FINAL(context.split()[-1])")] * 2))
    result = rlm_cli(
        "replay", recorded["run_id"], "-c", str(context), "--model", "openai/other", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recorded"]["answer"] == "LAST: SIX" and data["replayed"]["answer"] == "six"
    assert data["recorded"]["model"] == "openai/test-model"
    assert data["replayed"]["model"] == "openai/other"
    assert data["recorded"]["usage"]["model_calls"] == 5
    assert data["replayed"]["usage"]["model_calls"] == 1
    assert server.requests[0].model == "other"
    table = rlm_cli("replay", recorded["run_id"], "-c", str(context), "-m", "openai/other")
    assert table.exit_code == 0, table.output
    assert "recorded (openai/test-model)" in table.stdout
    assert "replayed (openai/other)" in table.stdout
    assert "LAST: SIX" in table.stdout and "six" in table.stdout
