"""Typed answers, memory and feedback through the MCP tools (the SDK's in-process client)."""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import repl
from mcp import Client
from test_mcp_tools import call, error

from rlmrt.mcp.server import build_server
from rlmrt.mcp.service import RLMService
from rlmrt.testing import scripted


@pytest.fixture
def connect(projects: dict[str, Path]):
    return lambda: Client(build_server(RLMService()))


async def test_a_typed_completion_returns_the_checked_output(connect, model_env) -> None:
    schema = {
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"],
    }
    model_env(scripted(root=[repl("FINAL({'count': 'x'})"), repl("FINAL({'count': 2})")]))
    async with connect() as client:
        result = await call(
            client,
            "rlm_completion",
            {"prompt": "How many?", "context": "a b", "output_schema": schema},
        )
    assert result["output"] == {"count": 2}
    assert (result["partial"], result["stop_reason"], result["iterations"]) == (False, "final", 2)


async def test_memory_tools_stay_in_their_project(connect) -> None:
    async with connect() as client:
        item = await call(
            client, "memory_remember", {"text": "alpha's ledger uses pipes", "pin": True}
        )
        assert item["id"].startswith("mem-") and item["pinned"] is True
        found = await call(client, "memory_recall", {"query": "ledger pipes"})
        assert [i["id"] for i in found["items"]] == [item["id"]]
        await call(client, "set_project", {"name": "beta"})
        assert (await call(client, "memory_recall", {"query": "ledger pipes"}))["items"] == []
        message = await error(client, "memory_forget", {"id": item["id"]})
        assert f"no memory item {item['id']!r}" in message
        await call(client, "set_project", {"name": "alpha"})
        assert await call(client, "memory_forget", {"id": item["id"]}) == {"forgotten": item["id"]}
        assert (await call(client, "memory_recall", {"query": "ledger"}))["items"] == []


async def test_feedback_judges_a_recorded_run(connect, model_env) -> None:
    model_env(scripted(root=[repl("FINAL('41')")]))
    async with connect() as client:
        run = await call(client, "rlm_completion", {"prompt": "How many?", "context": "c"})
        judged = await call(
            client, "feedback", {"run_id": run["run_id"], "verdict": "bad", "expected": "42"}
        )
        assert judged == {"run_id": run["run_id"], "verdict": "bad"}
        assert "no run 'nope'" in await error(
            client, "feedback", {"run_id": "nope", "verdict": "good"}
        )
        assert "verdict" in await error(client, "feedback", {"run_id": "x", "verdict": "meh"})
