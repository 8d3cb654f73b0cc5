"""`rlm logs`: the list of runs and one run as a tree, from real trajectory files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_events import RUN, run_events

from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")  # Rich's width when the output is not a terminal


def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "rlmrt-home" / "runs"


def make_run(rlm_cli, *args: str) -> dict:
    result = rlm_cli("run", *args, "--json", "--quiet")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_synthetic(folder: Path, run_id: str = RUN, shift_s: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    lines = [
        json.dumps({**e.to_dict(), "run_id": run_id, "ts": e.ts + shift_s}) for e in run_events()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_list_newest_first_with_numbers(rlm_cli, use_server) -> None:
    use_server(
        scripted(
            root=[repl("print(llm_query('hi'))"), "FINAL(first answer)", "FINAL(second answer)"],
            sub="hey",
        )
    )
    first = make_run(rlm_cli, "first prompt")
    second = make_run(rlm_cli, "second prompt")

    result = rlm_cli("logs")
    assert result.exit_code == 0, result.output
    rows = [x for x in result.stdout.splitlines() if "first prompt" in x or "second prompt" in x]
    assert len(rows) == 2
    assert second["run_id"] in rows[0]
    assert first["run_id"] in rows[1]
    assert "second answer" in rows[0]
    assert "final" in rows[1]
    tokens = first["usage"]["input_tokens"] + first["usage"]["output_tokens"]
    assert f" {tokens:,} " in rows[1]
    assert " 3 " in rows[1]  # model calls: 2 root + 1 sub

    listed = json.loads(rlm_cli("logs", "--json").stdout)
    assert [r["run_id"] for r in listed] == [second["run_id"], first["run_id"]]
    assert listed[1]["model_calls"] == first["usage"]["model_calls"] == 3
    assert listed[1]["input_tokens"] == first["usage"]["input_tokens"]
    assert listed[1]["partial"] is False
    assert listed[1]["prompt"] == "first prompt"
    assert listed[1]["answer"] == "first answer"

    limited = json.loads(rlm_cli("logs", "--json", "--limit", "1").stdout)
    assert [r["run_id"] for r in limited] == [second["run_id"]]


def test_tree_of_a_run_with_sub_calls_and_a_child_run(rlm_cli, use_server) -> None:
    def sub(req) -> str:
        return "sub says hi"

    use_server(
        scripted(
            root=[
                repl(
                    "a = llm_query('hello')\nb = rlm_query('go deeper', context='abc')\nprint(a, b)"
                ),
                "FINAL(deep answer)",  # the child run
                "FINAL(top answer)",
            ],
            sub=sub,
        )
    )
    data = make_run(rlm_cli, "top question", "--max-depth", "1")
    result = rlm_cli("logs", data["run_id"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    assert data["run_id"] in lines[0]
    assert data["trajectory_path"] in out.replace("\n", "")
    run_line = next(x for x in lines if '✓ run "top question"' in x)
    tokens = data["usage"]["input_tokens"] + data["usage"]["output_tokens"]
    assert f"{tokens:,} tok" in run_line
    assert "iteration 1" in out
    assert "iteration 2" in out
    assert '✓ llm_query "hello" → sub says hi' in out
    assert '✓ rlm_query "go deeper" → deep answer' in out
    assert 'child run (depth 1) "go deeper"' in out
    assert "answer top answer" in out

    as_json = json.loads(rlm_cli("logs", data["run_id"], "--json").stdout)
    assert as_json["run"]["run_id"] == data["run_id"]
    assert as_json["run"]["model_calls"] == data["usage"]["model_calls"] == 4
    kinds = [e["kind"] for e in as_json["events"]]
    assert kinds[0] == "run_started"
    assert kinds.count("run_started") == 2


def test_unique_prefix_unknown_and_ambiguous_ids(rlm_cli, tmp_path: Path) -> None:
    folder = runs_dir(tmp_path)
    write_synthetic(folder, "20250101-000000-aaaa1111")
    write_synthetic(folder, "20250101-000000-aaaa2222")
    write_synthetic(folder, "20250102-000000-bbbb3333")

    result = rlm_cli("logs", "20250102")
    assert result.exit_code == 0, result.output
    assert "20250102-000000-bbbb3333" in result.stdout.splitlines()[0]
    assert rlm_cli("logs", "bbbb3333").exit_code == 0  # the random suffix works too

    unknown = rlm_cli("logs", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: no run 'nope'")
    assert "hint: `rlm logs` lists the runs" in unknown.stderr

    ambiguous = rlm_cli("logs", "20250101")
    assert ambiguous.exit_code == 2
    assert "ambiguous" in ambiguous.stderr
    assert "aaaa1111" in ambiguous.stderr


def test_truncated_last_line_still_displays(rlm_cli, tmp_path: Path) -> None:
    path = write_synthetic(runs_dir(tmp_path))
    lines = path.read_text().splitlines()
    # killed during the 12th event: the line was cut in the middle
    path.write_text("\n".join(lines[:11]) + "\n" + lines[11][:25])

    tree = rlm_cli("logs", RUN)
    assert tree.exit_code == 0, tree.output
    assert "has not finished" in tree.stdout
    assert '… run "Count the [bold]words[/]"' in tree.stdout
    assert "child run (depth 1)" in tree.stdout

    listed = json.loads(rlm_cli("logs", "--json").stdout)
    assert listed[0]["status"] == "unfinished"
    assert listed[0]["partial"] is None
    assert listed[0]["answer"] is None
    assert listed[0]["model_calls"] == 3
    table = rlm_cli("logs")
    assert "unfinished" in table.stdout


def test_runs_of_the_same_second_are_ordered_by_start(rlm_cli, tmp_path: Path) -> None:
    write_synthetic(runs_dir(tmp_path), "20250101-000000-ffff", shift_s=0.1)
    write_synthetic(runs_dir(tmp_path), "20250101-000000-0000", shift_s=0.6)
    write_synthetic(runs_dir(tmp_path), "20241231-235959-ffff", shift_s=0.9)
    listed = json.loads(rlm_cli("logs", "--json").stdout)
    assert [r["run_id"][-4:] for r in listed] == ["0000", "ffff", "ffff"]
    assert listed[2]["run_id"].startswith("2024")


def test_partial_run_in_list(rlm_cli, tmp_path: Path) -> None:
    write_synthetic(runs_dir(tmp_path))
    row = json.loads(rlm_cli("logs", "--json").stdout)[0]
    assert row["status"] == "partial"
    assert row["stop_reason"] == "max_iterations"
    assert row["model_calls"] == 6  # 5 answered, 1 failed
    assert "partial (max_iterations)" in rlm_cli("logs").stdout


def test_empty_and_missing_folders(rlm_cli, tmp_path: Path) -> None:
    result = rlm_cli("logs")
    assert result.exit_code == 0
    assert "no runs in" in result.stdout
    assert json.loads(rlm_cli("logs", "--json").stdout) == []

    missing = rlm_cli("logs", "abc", "--dir", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert missing.stderr.startswith("error: no runs in ")


def test_dir_option_and_env_setting(rlm_cli, tmp_path: Path, monkeypatch) -> None:
    write_synthetic(tmp_path / "mine", "20250103-000000-cccc")
    assert "cccc" in rlm_cli("logs", "--dir", str(tmp_path / "mine")).stdout
    monkeypatch.setenv("RLM_TRAJECTORY__DIR", str(tmp_path / "mine"))
    assert "cccc" in rlm_cli("logs").stdout


def test_list_fits_a_narrow_terminal(rlm_cli, tmp_path: Path, monkeypatch) -> None:
    write_synthetic(runs_dir(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    out = rlm_cli("logs").stdout
    row = next(x for x in out.splitlines() if x.startswith(RUN))
    assert len(row) <= 80
    assert row.rstrip().endswith("13.50s")  # the numbers are never cut; previews shrink
    assert " partial " in row
    assert "Count th" in row
