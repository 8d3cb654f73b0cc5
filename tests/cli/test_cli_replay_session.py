"""`rlm replay` of a run made in a session: earlier runs first, `--session-context`."""

from __future__ import annotations

import json
from pathlib import Path

from rlmrt import RLM
from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def _record(use_server, tmp_path: Path) -> tuple[list[str], Path, Path]:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("red green blue")
    second.write_text("cyan magenta")
    server = use_server(
        scripted(
            root=[
                repl("colours = context.split()\nFINAL(len(colours))"),
                repl("colours += context_1.split()\nprint(colours, len(history))"),
                "FINAL(all colours)",
            ]
        )
    )
    rlm = RLM()
    try:
        with rlm.session(context=first) as session:
            ids = [session.completion("how many?").run_id]
            ids.append(session.completion("and with these?", context=second).run_id)
    finally:
        rlm.close()
    server.stop()
    return ids, first, second


def test_replay_of_a_session_run(rlm_cli, use_server, tmp_path) -> None:
    ids, first, second = _record(use_server, tmp_path)
    args = ("replay", ids[1], "-c", str(first), "--session-context", str(second))
    result = rlm_cli(*args)
    assert result.exit_code == 0, result.output
    assert f"replayed 1 earlier run(s) ({ids[0]})" in result.stdout
    assert result.stdout.endswith("2 code execution(s), identical\n")
    data = json.loads(rlm_cli(*args, "--json").stdout)
    assert data["session_runs"] == [ids[0]] and data["identical"] is True


def test_a_session_run_needs_its_contexts_and_earlier_runs(rlm_cli, use_server, tmp_path) -> None:
    ids, first, second = _record(use_server, tmp_path)
    result = rlm_cli("replay", ids[1], "-c", str(first))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the run's session also had `context_1`")
    assert "--session-context" in result.stderr
    runs = tmp_path / "rlmrt-home" / "runs"
    (runs / f"{ids[0]}.jsonl").unlink()
    result = rlm_cli("replay", ids[1], "-c", str(first), "--session-context", str(second))
    assert result.exit_code == 2
    assert f"needs the session's completion 1, run {ids[0]}" in result.stderr


def test_a_session_run_on_another_model(rlm_cli, use_server, tmp_path) -> None:
    ids, first, second = _record(use_server, tmp_path)
    server = use_server(scripted(root=[repl("FINAL(f'{len(colours)} {context_1}')")]))
    result = rlm_cli(
        "replay",
        ids[1],
        "-c",
        str(first),
        "--session-context",
        str(second),
        "-m",
        "openai/x",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # the first run's variable and the second run's context were rebuilt
    assert data["replayed"]["answer"] == "3 cyan magenta"
    assert data["recorded"]["answer"] == "all colours"
    assert [r.model for r in server.requests] == ["x"]
