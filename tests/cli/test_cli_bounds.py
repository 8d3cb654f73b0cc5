"""Issue 14 through `rlm run` and `rlm logs`: budgets that bound every model call,
replies cut at a size, text that is not valid Unicode, and their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rlmrt.cli._errors import EXIT_RUN_ERROR
from rlmrt.events import ModelCallFinished, RunStarted
from rlmrt.observe.trajectory import TrajectoryWriter, read_events
from rlmrt.testing import Reply, scripted


def test_wall_time_bounds_retries_and_the_closing_call(rlm_cli, use_server, monkeypatch) -> None:
    # Before: the root call failed at the budget, then the closing call waited
    # request_timeout_s (120 s) x 4 attempts.
    use_server(lambda request: Reply(fault="hang"))
    monkeypatch.setenv("RLM_LLM__MAX_RETRIES", "3")
    started = time.monotonic()
    result = rlm_cli("run", "q", "--max-wall-time", "2", "--json")
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 0.2 + 5  # the budget, the closing slice (10%), slack for a busy host
    assert result.exit_code == EXIT_RUN_ERROR
    data = json.loads(result.stdout)
    assert (data["answer"], data["partial"], data["stop_reason"]) == (
        None,
        True,
        "max_wall_time_s",
    )
    assert "error: the run stopped (max_wall_time_s) without an answer" in result.stderr
    failed = [
        e for e in read_events(Path(data["trajectory_path"])) if e.kind == "model_call_failed"
    ]
    assert [e.purpose for e in failed] == ["root", "final"]  # type: ignore[attr-defined]
    assert "closing call's slice" in failed[1].message  # type: ignore[attr-defined]


def test_a_huge_reply_is_cut_and_not_resent(rlm_cli, use_server) -> None:
    huge = "A" * 5_000_000
    server = use_server(lambda request: huge)
    result = rlm_cli("run", "q", "--max-iterations", "2", "--max-reply-chars", "10000", "--json")
    data = json.loads(result.stdout)
    assert data["partial"] is True
    assert data["answer"] == "A" * 10_000
    assert "the reply of model openai/test-model was cut at 10,000 characters" in result.stderr
    longest = max(len(m["content"]) for r in server.requests for m in r.messages)
    assert longest == 10_000
    assert Path(data["trajectory_path"]).stat().st_size < 200_000


def test_max_reply_chars_protects_by_default(rlm_cli) -> None:
    shown = json.loads(rlm_cli("config", "show", "--json").stdout)
    assert shown["settings"]["llm.max_reply_chars"]["value"] == 1_000_000


def test_failed_attempts_count_as_calls(rlm_cli, use_server, monkeypatch) -> None:
    use_server(lambda request: Reply(status=503, text="busy"))
    monkeypatch.setenv("RLM_LLM__MAX_RETRIES", "3")
    monkeypatch.setenv("RLM_LLM__REQUEST_TIMEOUT_S", "5")
    result = rlm_cli("run", "q", "-q")
    assert result.exit_code == EXIT_RUN_ERROR
    assert "after 4 attempts" in result.stderr
    row = json.loads(rlm_cli("logs", "--json").stdout)[0]
    assert (row["status"], row["model_calls"]) == ("error", 4)


def test_text_that_is_not_valid_unicode_is_written_escaped(
    rlm_cli, use_server, tmp_path: Path
) -> None:
    code = "```repl\nprint(sorted(context))\nFINAL('done ' + chr(0xDCFF))\n```"
    use_server(scripted(root=[code, code]))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine")
    Path(os.fsdecode(bytes(folder) + b"/\xffname.txt")).write_text("odd name")
    result = rlm_cli("run", "why \udcff?", "-c", str(folder), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    events = read_events(Path(data["trajectory_path"]))
    assert events[0].prompt == "why \udcff?"  # type: ignore[attr-defined]
    assert events[-1].answer == "done \udcff"  # type: ignore[attr-defined]
    assert "\\xffname.txt" in str(events[0].context_metadata)  # type: ignore[attr-defined]
    plain = rlm_cli("run", "why \udcff?", "-c", str(folder), "-q")
    assert plain.stdout_bytes.endswith(b"done \\udcff\n")
    row = json.loads(rlm_cli("logs", "--json").stdout)[0]
    assert row["status"] == "final"


def test_latin1_context_with_encoding(rlm_cli, use_server, tmp_path: Path) -> None:
    server = use_server(scripted(root=["```repl\nprint(context)\n```", "FINAL(ok)"]))
    (tmp_path / "old.txt").write_bytes("café crème".encode("latin-1"))
    refused = rlm_cli("run", "q", "-c", "old.txt")
    assert refused.exit_code == 2
    assert "--encoding latin-1" in refused.stderr
    result = rlm_cli("run", "q", "-c", "old.txt", "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert server.requests[-1].messages[-1]["content"] == "Output:\ncafé crème\n"
    bad = rlm_cli("run", "q", "-c", "old.txt", "--encoding", "martian")
    assert bad.exit_code == 2
    assert "unknown encoding 'martian'" in bad.stderr


def test_a_toml_file_that_is_not_utf8_is_named(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_bytes("[llm]\nmodel = 'caf\xe9'\n".encode("latin-1"))
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert "rlm.toml is not UTF-8 text" in result.stderr
    assert str(tmp_path / "rlm.toml") in result.stderr


def test_logs_reads_a_huge_trajectory_in_bounded_memory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    path = runs / "20260101-000000000-aaaaaaaa.jsonl"
    writer = TrajectoryWriter(path)
    ids = {"run_id": "r", "depth": 0}
    writer(
        RunStarted(
            **ids,
            call_id="r",
            parent_call_id=None,
            prompt="P" * 60_000_000,
            model="m",
            sandbox="local",
            context_metadata={},
        )
    )
    for n in range(2):
        writer(
            ModelCallFinished(
                **ids,
                call_id=f"c{n}",
                parent_call_id="r",
                model="m",
                purpose="root",
                response="A" * 60_000_000,
                input_tokens=1,
                output_tokens=2,
                cost_usd=0.0,
                duration_s=1.0,
            )
        )
    writer.close()
    assert path.stat().st_size > 170_000_000
    # The peak memory of `rlm logs` itself, measured around it by a parent process.
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(done.returncode, peak, done.stdout.count('aaaaaaaa'))\n"
    )
    rlm = [sys.executable, "-m", "rlmrt.cli.main"]
    for args in (["logs", "--dir", str(runs), "--json"], ["logs", "aaaaaaaa", "--dir", str(runs)]):
        out = subprocess.run(
            [sys.executable, "-c", probe, *rlm, *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout.split()
        code, peak_kib, mentions = int(out[0]), int(out[1]), int(out[2])
        assert code == 0
        assert mentions >= 1
        assert peak_kib < 250 * 1024, f"rlm {' '.join(args)} peaked at {peak_kib // 1024} MiB"
        # the whole file as text alone would be 180 MB; its events parsed, twice that
