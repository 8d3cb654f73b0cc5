"""Costs from real recorded runs: per model/day/project/run, `rlm costs` (table, JSON,
bad input), and the daily USD budget refusing a run and stopping one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from scripted import PRICES, one_sub_call
from typer.testing import CliRunner

from rlmrt.cli.main import app
from rlmrt.errors import BudgetExceededError, UsageError
from rlmrt.observe.costs import call_costs, group_costs, parse_since, spent_today


def record_runs(make_rlm, server, folder: Path, count: int, **settings) -> list:
    results = []
    with make_rlm(server, trajectory_dir=folder, prices=PRICES, **settings) as rlm:
        for _ in range(count):
            results.append(rlm.completion("go", context="abc"))
    return results


def test_costs_add_up_to_what_the_runs_reported(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(one_sub_call)
    alpha = record_runs(make_rlm, server, tmp_path / "alpha", 2)
    beta = record_runs(make_rlm, server, tmp_path / "beta", 1)
    folders = {"alpha": tmp_path / "alpha", "beta": tmp_path / "beta"}
    calls = list(call_costs(folders))
    assert len(calls) == 3 * 3  # root x2 + one llm_query per run
    by_project = {r.key: r for r in group_costs(calls, "project")}
    assert by_project["alpha"].cost_usd == pytest.approx(sum(r.usage.cost_usd for r in alpha))
    assert by_project["beta"].cost_usd == pytest.approx(beta[0].usage.cost_usd)
    assert by_project["alpha"].runs == 2 and by_project["alpha"].calls == 6
    by_run = {r.key: r for r in group_costs(calls, "run")}
    for result in alpha + beta:
        assert by_run[result.run_id].input_tokens == result.usage.input_tokens
        assert by_run[result.run_id].output_tokens == result.usage.output_tokens
    (model,) = group_costs(calls, "model")
    assert model.key == "openai/test-model" and model.cost_usd > 0
    (day,) = group_costs(calls, "day")
    assert day.key == time.strftime("%Y-%m-%d", time.gmtime())
    assert spent_today(tmp_path / "alpha") == pytest.approx(by_project["alpha"].cost_usd)
    assert list(call_costs(folders, since=time.time() + 60)) == []


def test_rlm_costs_prints_a_table_and_json(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(one_sub_call)
    results = record_runs(make_rlm, server, tmp_path / "runs", 2)
    runner = CliRunner()
    shown = runner.invoke(app, ["costs", "--dir", str(tmp_path / "runs"), "--since", "1d"])
    assert shown.exit_code == 0, shown.output
    assert "openai/test-model" in shown.output and "█" in shown.output
    total = sum(r.usage.cost_usd for r in results)
    assert f"{total:.4f}" in shown.output
    as_json = runner.invoke(
        app, ["costs", "--dir", str(tmp_path / "runs"), "--by", "run", "--json"]
    )
    data = json.loads(as_json.stdout)
    assert data["by"] == "run" and data["total_usd"] == pytest.approx(total)
    assert {row["key"] for row in data["rows"]} == {r.run_id for r in results}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "colour"], "unknown --by 'colour'"),
        (["--since", "yesterday"], "cannot read --since 'yesterday'"),
    ],
)
def test_rlm_costs_bad_input_is_a_clear_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["costs", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_parse_since() -> None:
    assert parse_since("7d", now=1_000_000) == 1_000_000 - 7 * 86_400
    assert parse_since("30m", now=10_000) == 10_000 - 1800
    assert parse_since("2025-01-31") == 1738281600
    with pytest.raises(UsageError, match="cannot read --since"):
        parse_since("7x")


def test_the_daily_budget_stops_a_run_and_refuses_the_next(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(one_sub_call)
    folder = tmp_path / "runs"
    (first,) = record_runs(make_rlm, server, folder, 1)
    spent = first.usage.cost_usd
    assert spent > 0
    # a budget the next run crosses during its first call: it stops there, naming it
    budget = spent * 1.2
    with make_rlm(
        server, trajectory_dir=folder, prices=PRICES, daily_usd=budget, project_name="p"
    ) as rlm:
        stopped = rlm.completion("go", context="abc")
        assert stopped.partial and stopped.stop_reason == "daily_usd"
        with pytest.raises(BudgetExceededError, match=r"\[budget\] daily_usd=") as refused:
            rlm.completion("go", context="abc")
    assert refused.value.limit == "daily_usd"
    assert "project p spent" in str(refused.value)


def test_the_daily_budget_needs_trajectories(serve, make_rlm) -> None:
    from rlmrt.errors import ConfigError

    server = serve(one_sub_call)
    with (
        make_rlm(server, daily_usd=1.0, save_trajectory=False) as rlm,
        pytest.raises(ConfigError, match="daily_usd needs trajectories"),
    ):
        rlm.completion("go", context="abc")


def test_rlm_run_refused_by_the_daily_budget_says_so(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(one_sub_call)
    folder = tmp_path / "runs"
    (first,) = record_runs(make_rlm, server, folder, 1)
    (tmp_path / "in.txt").write_text("abc")
    result = CliRunner().invoke(
        app,
        [
            "run", "go", "--context", str(tmp_path / "in.txt"), "--model", "openai/test-model",
            "--api-base", server.url, "--trajectory-dir", str(folder),
            "--daily-usd", str(first.usage.cost_usd / 2),
        ],
        env={"RLM_LLM__API_KEY": "sk-test"},
    )  # fmt: skip
    assert result.exit_code != 0
    assert "daily budget exhausted: [budget] daily_usd=" in result.output
    assert "Traceback" not in result.output


def test_the_monthly_budget_counts_earlier_days_of_the_month(
    serve, make_rlm, tmp_path: Path
) -> None:
    """A call recorded yesterday counts in the month, not in the day (unless the month
    just began): the monthly budget refuses the run that the daily one lets through."""
    import json

    from rlmrt.observe.costs import day_start, month_start, project_spend

    server = serve(one_sub_call)
    folder = tmp_path / "runs"
    (first,) = record_runs(make_rlm, server, folder, 1)
    spent = first.usage.cost_usd
    # move the recorded run's calls to the start of this month (the first second of it)
    (path,) = folder.glob("*.jsonl")
    moved = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        event["ts"] = month_start() + 1
        moved.append(json.dumps(event))
    path.write_text("\n".join(moved) + "\n")
    spend = project_spend(folder)
    assert spend.month_usd == pytest.approx(spent)
    starts_today = month_start() + 1 >= day_start()
    assert spend.today_usd == pytest.approx(spent if starts_today else 0.0)
    with (
        make_rlm(
            server, trajectory_dir=folder, prices=PRICES, monthly_usd=spent / 2, project_name="p"
        ) as rlm,
        pytest.raises(
            BudgetExceededError, match=r"monthly budget exhausted: \[budget\] monthly_usd="
        ) as refused,
    ):
        rlm.completion("go", context="abc")
    assert refused.value.limit == "monthly_usd"
    assert "project p spent" in str(refused.value) and "this month (UTC)" in str(refused.value)
