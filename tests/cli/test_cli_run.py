"""`rlm run` end to end, in-process, against the scripted server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from rlmrt.cli._errors import EXIT_PARTIAL
from rlmrt.observe.trajectory import read_events
from rlmrt.testing import Reply, scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def outputs_seen(server) -> list[str]:
    """What the root model was shown after each of its turns (last user message)."""
    return [r.messages[-1]["content"] for r in server.requests if r.is_rlm_root][1:]


def test_run_json(rlm_cli, use_server, tmp_path: Path) -> None:
    server = use_server(scripted(root=[repl("print(context is None)"), "FINAL(42)"]))
    result = rlm_cli("run", "How long?", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "42"
    assert data["partial"] is False
    assert data["stop_reason"] == "final"
    assert data["iterations"] == 2
    assert data["usage"]["model_calls"] == 2
    assert data["usage"]["input_tokens"] > 0
    assert set(data) == {
        "answer",
        "partial",
        "stop_reason",
        "usage",
        "run_id",
        "trajectory_path",
        "iterations",
    }
    path = Path(data["trajectory_path"])
    assert path.parent == tmp_path / "rlmrt-home" / "runs"  # RLMRT_HOME, never ~/.rlmrt
    assert path.name == f"{data['run_id']}.jsonl"
    assert [e.kind for e in read_events(path)][-1] == "run_finished"
    assert outputs_seen(server) == ["Output:\nTrue\n"]  # no --context: None


def test_run_prints_answer_and_plain_progress(rlm_cli, use_server) -> None:
    use_server(scripted(root=[repl("x = llm_query('hi')\nprint(x)"), "FINAL(done)"], sub="hey"))
    result = rlm_cli("run", "Say hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "done\n"
    stderr = result.stderr
    lines = [x.split("] ", 1)[1] for x in stderr.splitlines()]
    assert 'run started: "Say hi"' in stderr
    assert 'llm_query: "hi"' in stderr
    assert "model call (sub) done" in stderr
    assert any(x.startswith("code ran (iteration 1, ") and x.endswith("): hey") for x in lines)
    assert "run finished: final, 2 iterations" in stderr


def test_quiet_prints_only_the_answer(rlm_cli, use_server) -> None:
    use_server(scripted(root=["FINAL(ok)"]))
    result = rlm_cli("run", "q", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "ok\n"
    assert result.stderr == ""


def test_context_file(rlm_cli, use_server, tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("hello world")
    server = use_server(scripted(root=[repl("print(len(context), context[:5])"), "FINAL(11)"]))
    result = rlm_cli("run", "How long?", "--context", "doc.txt", "-q")
    assert result.exit_code == 0, result.output
    assert outputs_seen(server) == ["Output:\n11 hello\n"]


def test_context_folder_and_several_files(rlm_cli, use_server, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("alpha")
    (folder / "sub" / "b.md").write_text("beta")
    (tmp_path / "c.txt").write_text("gamma")
    code = repl("print(sorted(context.items()))")
    server = use_server(scripted(root=[code, "FINAL(a)", code, "FINAL(b)"]))

    assert rlm_cli("run", "q", "-c", "docs", "-q").exit_code == 0
    assert rlm_cli("run", "q", "-c", "docs/a.md", "-c", "c.txt", "-q").exit_code == 0
    first, second = outputs_seen(server)[0], outputs_seen(server)[2]
    assert first == "Output:\n[('a.md', 'alpha'), ('sub/b.md', 'beta')]\n"
    assert second == "Output:\n[('c.txt', 'gamma'), ('docs/a.md', 'alpha')]\n"


def test_context_from_stdin(rlm_cli, use_server) -> None:
    server = use_server(scripted(root=[repl("print(context.upper())"), "FINAL(x)"]))
    result = rlm_cli("run", "q", "--context", "-", "-q", input="piped text")
    assert result.exit_code == 0, result.output
    assert outputs_seen(server) == ["Output:\nPIPED TEXT\n"]


def test_flags_override_env(rlm_cli, use_server) -> None:
    server = use_server(scripted(root=["FINAL(ok)"]))
    result = rlm_cli("run", "q", "-q", "--model", "openai/flag-model")
    assert result.exit_code == 0, result.output
    assert [r.model for r in server.requests] == ["flag-model"]


def test_partial_answer_exits_with_its_own_code_and_a_note(rlm_cli, use_server) -> None:
    use_server(scripted(root=[repl("print(1)"), "my best guess"]))
    result = rlm_cli("run", "q", "--max-iterations", "1", "--json")
    assert result.exit_code == EXIT_PARTIAL == 3, result.output
    data = json.loads(result.stdout)
    assert data["partial"] is True
    assert data["stop_reason"] == "max_iterations"
    assert data["answer"] == "my best guess"
    assert "note: the answer is partial" in result.stderr
    assert "max_iterations" in result.stderr.splitlines()[-1]


def test_model_error_exits_one(rlm_cli, use_server) -> None:
    use_server(lambda req: Reply(status=401, text="bad key"))
    result = rlm_cli("run", "q")
    assert result.exit_code == 1
    errors = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert errors[-1] == result.stderr.strip().splitlines()[-1]  # the last line is the error
    assert result.stdout == ""


def test_trajectory_dir_flag(rlm_cli, use_server, tmp_path: Path) -> None:
    use_server(scripted(root=["FINAL(ok)"]))
    result = rlm_cli("run", "q", "--json", "--trajectory-dir", str(tmp_path / "elsewhere"))
    assert result.exit_code == 0
    path = Path(json.loads(result.stdout)["trajectory_path"])
    assert path.parent == tmp_path / "elsewhere"
    assert path.is_file()


def test_quota_flags_reach_the_sandbox(rlm_cli, use_server) -> None:
    code = "print('z' * 500)\nwhile True:\n    pass"
    server = use_server(scripted(root=[repl(code), "FINAL(stopped)"]))
    flags = ["--exec-timeout", "0.5", "--output-bytes", "100", "--cpu-s", "3"]
    result = rlm_cli("run", "loop", *flags, "--sandbox", "local", "--json")
    assert result.exit_code == 0, result.output
    seen = outputs_seen(server)[0]
    assert "TimeoutError: execution exceeded the 0.5 s time limit" in seen
    assert "[output truncated:" in seen
    path = Path(json.loads(result.stdout)["trajectory_path"])
    notices = [e for e in read_events(path) if e.kind == "limit_not_enforced"]
    # local's time and memory checks are best-effort; it does not measure CPU
    expected = [["exec_timeout_s", "memory_mb", "cpu_s"]]
    assert [n.limits for n in notices] == expected  # type: ignore[attr-defined]


def test_bad_quota_flag_names_the_flag(rlm_cli, use_server) -> None:
    use_server(scripted(root=["FINAL(x)"]))
    result = rlm_cli("run", "q", "--memory-mb", "0")
    assert result.exit_code == 2
    assert "memory_mb (--memory-mb)" in result.stderr
    assert "Traceback" not in result.output


SCHEMA = {
    "type": "object",
    "properties": {"count": {"type": "integer"}, "status": {"enum": ["OVERDUE", "PAID"]}},
    "required": ["count", "status"],
}


def test_run_output_schema_checks_the_answer_and_gives_the_value(
    rlm_cli, use_server, tmp_path: Path
) -> None:
    schema = tmp_path / "answer.schema.json"
    schema.write_text(json.dumps(SCHEMA))
    server = use_server(
        scripted(
            root=[
                repl("FINAL({'count': 'many', 'status': 'OVERDUE'})"),
                repl("FINAL({'count': 138, 'status': 'OVERDUE'})"),
            ]
        )
    )
    result = rlm_cli("run", "How many overdue?", "--output-schema", str(schema), "--json", "-q")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == {"count": 138, "status": "OVERDUE"}
    assert json.loads(data["answer"]) == data["output"]
    assert '"required": ["count", "status"]' in server.requests[0].last_user_text
    assert "count: Input should be a valid integer" in server.requests[1].last_user_text


def test_run_output_schema_never_fitting_is_partial_and_says_why(
    rlm_cli, use_server, tmp_path: Path
) -> None:
    schema = tmp_path / "answer.schema.json"
    schema.write_text(json.dumps(SCHEMA))
    use_server(scripted(root=[repl("FINAL('lots')")] * 3))
    result = rlm_cli("run", "How many?", "--output-schema", str(schema), "-q")
    assert result.exit_code == EXIT_PARTIAL
    assert result.stdout == "lots\n"
    assert "the answer does not fit --output-schema" in result.stderr


def test_run_output_schema_that_is_not_json_is_a_usage_error(rlm_cli, tmp_path: Path) -> None:
    schema = tmp_path / "bad.json"
    schema.write_text("{not json")
    result = rlm_cli("run", "q", "--output-schema", str(schema))
    assert result.exit_code == 2
    assert f"--output-schema {schema} is not JSON" in result.stderr
    missing = rlm_cli("run", "q", "--output-schema", str(tmp_path / "none.json"))
    assert missing.exit_code == 2 and "cannot read --output-schema" in missing.stderr
