"""`rlm memory` and `rlm feedback` end to end, in-process, with projects kept apart."""

from __future__ import annotations

import json
from pathlib import Path

from rlmrt.testing import scripted


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def test_add_list_search_rm_export(rlm_cli, tmp_path: Path) -> None:
    first = rlm_cli("memory", "add", "split the ledger on '|'", "--tag", "ledger", "--pin")
    assert first.exit_code == 0, first.output
    item_id = first.stdout.strip()
    assert item_id.startswith("mem-")
    rlm_cli("memory", "add", "log levels are the second word", "--kind", "note")
    listed = json.loads(rlm_cli("memory", "list", "--json").stdout)
    assert [(i["text"], i["pinned"]) for i in listed] == [
        ("split the ledger on '|'", True),
        ("log levels are the second word", False),
    ]
    found = json.loads(rlm_cli("memory", "search", "ledger", "--json").stdout)
    assert [i["id"] for i in found] == [item_id]
    assert "split the ledger" in rlm_cli("memory", "list", "--pinned").stdout
    removed = rlm_cli("memory", "rm", item_id)
    assert removed.exit_code == 0 and f"forgot {item_id}" in removed.stdout
    again = rlm_cli("memory", "rm", item_id)
    assert again.exit_code == 2 and f"no memory item {item_id!r}" in again.stderr
    out = tmp_path / "memory.json"
    assert rlm_cli("memory", "export", "--out", str(out)).exit_code == 0
    assert [i["text"] for i in json.loads(out.read_text())["items"]] == [
        "log levels are the second word"
    ]


def test_bad_input_is_named(rlm_cli) -> None:
    kind = rlm_cli("memory", "list", "--kind", "rumour")
    assert kind.exit_code == 2 and "--kind must be one of fact, note, lesson" in kind.stderr
    empty = rlm_cli("memory", "add", "  ")
    assert empty.exit_code != 0 and "non-empty string" in empty.stderr
    verdict = rlm_cli("feedback", "some-run", "meh")
    assert verdict.exit_code == 2 and "the verdict is good or bad" in verdict.stderr
    missing = rlm_cli("feedback", "no-such-run", "good")
    assert missing.exit_code != 0 and "no run 'no-such-run'" in missing.stderr


def test_feedback_records_the_runs_question_and_answer(rlm_cli, use_server) -> None:
    use_server(scripted(root=[repl("FINAL('137')")]))
    run = json.loads(rlm_cli("run", "How many overdue?", "--json", "-q").stdout)
    given = rlm_cli(
        "feedback", run["run_id"][-8:], "bad", "--expected", "138", "--note", "off by one"
    )
    assert given.exit_code == 0, given.output
    assert given.stdout.strip() == f"{run['run_id']}: bad"
    exported = json.loads(rlm_cli("memory", "export").stdout)
    assert exported["feedback"] == [
        {
            "run_id": run["run_id"],
            "verdict": "bad",
            "note": "off by one",
            "expected": "138",
            "prompt": "How many overdue?",
            "answer": "137",
            "created": exported["feedback"][0]["created"],
            "distilled": False,
        }
    ]


def test_one_projects_memory_is_not_anothers(rlm_cli, tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        assert rlm_cli("project", "add", name, str(tmp_path / name)).exit_code == 0
    rlm_cli("memory", "add", "alpha's secret recipe", "--project", "alpha")
    assert "alpha's secret" in rlm_cli("memory", "list", "--project", "alpha").stdout
    beta = json.loads(
        rlm_cli("memory", "search", "secret recipe", "--project", "beta", "--json").stdout
    )
    assert beta == []
    assert json.loads(rlm_cli("memory", "list", "--json").stdout) == []  # outside projects


def test_learn_turns_judged_runs_into_lessons(rlm_cli, use_server) -> None:
    use_server(scripted(root=[repl("FINAL('137')")], sub="Compare the status field exactly."))
    run = json.loads(rlm_cli("run", "How many overdue?", "--json", "-q").stdout)
    assert rlm_cli("feedback", run["run_id"], "bad", "--expected", "138").exit_code == 0
    learned = rlm_cli("memory", "learn")
    assert learned.exit_code == 0, learned.output
    assert f"({run['run_id']}): Compare the status field exactly." in learned.stdout
    lessons = json.loads(rlm_cli("memory", "list", "--kind", "lesson", "--json").stdout)
    assert [(i["text"], i["source_runs"]) for i in lessons] == [
        ("Compare the status field exactly.", [run["run_id"]])
    ]
    nothing = rlm_cli("memory", "learn")
    assert "no judged run to learn from" in nothing.stdout
