"""Prompt-cache and reasoning tokens, as a provider reports them in its usage block, carried
by a real scripted run through every view: the run's usage, its cost, the trajectory and
`rlm costs`, the chat spans and the Prometheus counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from otel_support import global_provider
from prometheus_client import REGISTRY
from scripted import MODEL, repl
from typer.testing import CliRunner

from rlmrt.cli.main import app
from rlmrt.observe.costs import call_costs, group_costs
from rlmrt.testing import ChatRequest, Reply

# USD per million tokens: cache reads a tenth of the input price, writes 1.25 times it
PRICES = {
    MODEL: {
        "input_per_mtok": 1000.0,
        "output_per_mtok": 2000.0,
        "cache_read_per_mtok": 100.0,
        "cache_write_per_mtok": 1250.0,
    }
}
SUB = Reply(
    text="hi",
    prompt_tokens=800,
    completion_tokens=90,
    usage_details={
        "prompt_tokens_details": {"cached_tokens": 500, "cache_creation_tokens": 200},
        "completion_tokens_details": {"reasoning_tokens": 60},
    },
)


def handler(request: ChatRequest) -> Reply:
    """Root: one block with two llm_query calls, then FINAL; no parts in its usage.
    Sub-calls: SUB, with cache and reasoning parts."""
    if not request.is_rlm_root:
        return SUB
    if any(m["role"] == "assistant" for m in request.messages):
        return Reply(text=repl("FINAL('done')"), prompt_tokens=100, completion_tokens=10)
    return Reply(
        text=repl("print(llm_query('a'), llm_query('b'))"), prompt_tokens=100, completion_tokens=10
    )


def test_cache_and_reasoning_tokens_reach_every_view(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(handler)
    project = "token-parts"
    with (
        global_provider() as exporter,
        make_rlm(
            server, prices=PRICES, project_name=project, trajectory_dir=tmp_path / "runs"
        ) as rlm,
    ):
        result = rlm.completion("go", context="abc")
    assert result.answer == "done"

    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (2 * 100 + 2 * 800, 2 * 10 + 2 * 90)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (1000, 400)
    assert usage.reasoning_tokens == 120
    # each sub-call: 100 fresh + 500 read + 200 written input, 90 output (reasoning at the
    # output price); the two root calls have no parts
    sub_cost = (100 * 1000 + 500 * 100 + 200 * 1250 + 90 * 2000) / 1e6
    root_cost = (100 * 1000 + 10 * 2000) / 1e6
    assert usage.cost_usd == pytest.approx(2 * sub_cost + 2 * root_cost)

    (row,) = group_costs(call_costs({project: tmp_path / "runs"}), "run")
    assert (row.cache_read_tokens, row.cache_write_tokens, row.reasoning_tokens) == (1000, 400, 120)
    assert row.cost_usd == pytest.approx(usage.cost_usd)
    runner = CliRunner()
    shown = runner.invoke(app, ["costs", "--dir", str(tmp_path / "runs"), "--json"])
    (data,) = json.loads(shown.stdout)["rows"]
    assert (data["cache_read_tokens"], data["cache_write_tokens"]) == (1000, 400)
    table = runner.invoke(app, ["costs", "--dir", str(tmp_path / "runs")], env={"COLUMNS": "160"})
    assert table.exit_code == 0, table.output
    header = next(line for line in table.output.splitlines() if "USD" in line)
    assert "cache read" in header and "cache write" in header and "reasoning" in header

    chats = [s for s in exporter.get_finished_spans() if s.name == f"chat {MODEL}"]
    with_parts = [s for s in chats if "gen_ai.usage.cache_read.input_tokens" in s.attributes]
    assert len(chats) == 4 and len(with_parts) == 2
    for span in with_parts:
        assert span.attributes["gen_ai.usage.input_tokens"] == 800
        assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == 500
        assert span.attributes["gen_ai.usage.cache_creation.input_tokens"] == 200
        assert span.attributes["gen_ai.usage.reasoning.output_tokens"] == 60

    def part(name: str) -> float:
        labels = {"project": project, "model": MODEL, "part": name}
        return REGISTRY.get_sample_value("rlm_token_parts_total", labels) or 0.0

    assert (part("cache_read"), part("cache_write"), part("reasoning")) == (1000, 400, 120)


def test_a_table_without_parts_keeps_its_columns(serve, make_rlm, tmp_path: Path) -> None:
    server = serve(lambda request: repl("FINAL('done')"))
    with make_rlm(server, trajectory_dir=tmp_path / "runs") as rlm:
        rlm.completion("go", context="abc")
    shown = CliRunner().invoke(app, ["costs", "--dir", str(tmp_path / "runs")])
    header = next(line for line in shown.output.splitlines() if "USD" in line)
    assert "cache" not in header and "reasoning" not in header
