"""Every MCP tool and resource, through the SDK's in-process client (fast, measured)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from expected import TOOLS, repl
from mcp import Client
from mcp.shared.exceptions import MCPError

from rlmrt.config import BudgetLimits
from rlmrt.events import CodeExecuted, Event
from rlmrt.mcp.server import build_server
from rlmrt.mcp.service import RLMService, plain_value, progress_message
from rlmrt.mcp.sessions import SessionPool
from rlmrt.sandbox.facade import SANDBOXES
from rlmrt.testing import scripted


async def call(client: Client, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The tool's structured result; fails the test on a tool error."""
    result = await client.call_tool(tool, args or {}, **kw)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, args: dict[str, Any]) -> str:
    """The message of a tool error (which the call must give)."""
    result = await client.call_tool(tool, args)
    assert result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text


@pytest.fixture
def connect(projects: dict[str, Path]):
    """A client of a fresh server (in each test's own task: anyio's cancel scopes must
    be left in the task that entered them)."""
    return lambda: Client(build_server(RLMService()))


async def test_lists_every_tool_with_a_precise_schema(connect) -> None:
    async with connect() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        completion = tools["rlm_completion"].input_schema
        assert completion["required"] == ["prompt"]
        assert set(completion["properties"]) == {
            "prompt",
            "context",
            "files",
            "model",
            "sandbox",
            "max_depth",
            "max_iterations",
            "max_cost_usd",
            "output_schema",
        }
        assert completion["properties"]["prompt"]["minLength"] == 1
        depth = completion["properties"]["max_depth"]["anyOf"][0]
        assert (depth["type"], depth["minimum"], depth["maximum"]) == ("integer", 0, 16)
        # the settings' arguments carry the bounds and descriptions of RLMConfig's fields
        budget = BudgetLimits.model_fields
        iterations = completion["properties"]["max_iterations"]
        assert iterations["description"] == budget["max_iterations"].description
        assert iterations["anyOf"][0]["maximum"] == 1000
        cost = completion["properties"]["max_cost_usd"]
        assert cost["anyOf"][0] == {"type": "number", "exclusiveMinimum": 0}
        assert cost["description"] == budget["max_cost_usd"].description
        search = tools["context_search"].input_schema
        assert search["required"] == ["query"]
        assert search["properties"]["max_tokens"]["default"] == 2000
        assert tools["destroy_session"].input_schema["required"] == ["session"]
        assert tools["set_repl_context"].input_schema["properties"]["name"]["pattern"]
        for tool in tools.values():
            assert tool.description, tool.name


async def test_completion_reports_progress_and_leaves_a_run_resource(connect, model_env) -> None:
    async with connect() as client:
        model_env(
            scripted(
                root=[
                    repl(
                        "hits = context_search('aardvark night', max_tokens=200)\n"
                        "print(hits[0]['source'], llm_query('say hi'))"
                    ),
                    repl("FINAL(context.upper())"),
                ],
                sub="hi",
            )
        )
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        result = await call(
            client,
            "rlm_completion",
            {"prompt": "Shout it", "context": "quiet words"},
            progress_callback=on_progress,
        )
        assert result["answer"] == "QUIET WORDS"
        assert result["partial"] is False
        assert result["stop_reason"] == "final"
        assert result["iterations"] == 2
        assert result["usage"]["model_calls"] == 3
        assert result["project"] == "alpha"
        messages = [m for _, _, m in seen]
        assert messages[0] is not None and messages[0].startswith('run started: "Shout it"')
        assert 'llm_query: "say hi"' in messages
        assert any(m and m.startswith("llm_query done") for m in messages)
        assert any(m and m.startswith("code ran (iteration 1, ") for m in messages)
        assert "answer ready (code)" in messages
        assert messages[-1] is not None and messages[-1].startswith("run finished: final")
        assert [p for p, _, _ in seen] == list(range(1, len(seen) + 1))

        listed = json.loads((await client.read_resource("rlm://runs")).contents[0].text)
        assert [r["run_id"] for r in listed] == [result["run_id"]]
        run = json.loads((await client.read_resource(listed[0]["uri"])).contents[0].text)
        assert run["prompt"] == "Shout it" and run["answer"] == "QUIET WORDS"
        kinds = [e["kind"] for e in run["events"]]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        assert "code_executed" in kinds
        with pytest.raises(MCPError, match="no run 'nope'"):
            await client.read_resource("rlm://runs/nope")


async def test_completion_over_project_files(connect, model_env, projects: dict[str, Path]) -> None:
    async with connect() as client:
        model_env(scripted(root=[repl("FINAL(str(len(context)))")] * 2))
        result = await call(client, "rlm_completion", {"prompt": "n?", "files": ["data.txt"]})
        assert result["answer"] == str(len("line one\nline two\n"))
        absolute = str(projects["alpha"] / "docs")
        again = await call(
            client, "rlm_completion", {"prompt": "n?", "files": [absolute, "data.txt"]}
        )
        assert again["answer"] is not None and again["answer"].isdigit()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({}, ["prompt", "Field required"]),
        ({"prompt": ""}, ["prompt", "at least 1 character"]),
        ({"prompt": "q", "max_depth": 99}, ["max_depth", "less than or equal to 16"]),
        ({"prompt": "q", "max_iterations": "many"}, ["max_iterations"]),
        ({"prompt": "q", "files": ["missing.txt"]}, ["files[0]", "no such file or folder"]),
        ({"prompt": "q", "context": "c", "files": ["data.txt"]}, ["not both"]),
        ({"prompt": "q", "sandbox": "dockr"}, ["sandbox", "unknown sandbox 'dockr'"]),
        ({"prompt": "   "}, ["prompt: must not be empty"]),
    ],
)
async def test_completion_rejects_bad_arguments(
    connect, model_env, args: dict[str, Any], names: list[str]
) -> None:
    async with connect() as client:
        model_env(scripted(root=["FINAL(x)"]))
        text = await error(client, "rlm_completion", args)
        for name in names:
            assert name in text


async def test_sessions_persist_and_are_per_name(connect) -> None:
    async with connect() as client:
        # the default sandbox (process): get_repl_context below reads a value that is not
        # JSON data, rendered inside the kernel
        first = await call(client, "execute_python", {"code": "x = 40\nx + 2"})
        assert (first["session"], first["sandbox"], first["display"]) == (
            "default",
            "process",
            "42",
        )
        await call(client, "execute_python", {"code": "y = [40, 'a']", "session": "other"})
        failed = await call(client, "execute_python", {"code": "y", "session": "default"})
        assert failed["error"] is not None and "NameError" in failed["error"]
        final = await call(client, "execute_python", {"code": "FINAL(x)"})
        assert final["final_answer"] == "40"

        got = await call(client, "get_repl_context", {"session": "other"})
        assert got["values"] == {"y": [40, "a"]} and got["types"] == {"y": "list"}
        await call(client, "set_repl_context", {"value": {"k": [1, 2]}})
        await call(client, "set_repl_context", {"name": "obj", "value": 1})
        await call(client, "execute_python", {"code": "obj = object()"})
        values = (await call(client, "get_repl_context", {"names": ["context", "obj"]}))["values"]
        assert values["context"] == {"k": [1, 2]}
        assert values["obj"].startswith("<object object at")

        listed = await call(client, "list_sessions")
        assert listed["project"] == "alpha"
        assert [(s["name"], s["executions"]) for s in listed["sessions"]] == [
            ("default", 4),
            ("other", 1),
        ]
        cleared = await call(client, "clear_repl_context", {})
        assert cleared == {"session": "default", "sandbox": "process", "cleared": True}
        assert (await call(client, "get_repl_context", {}))["types"] == {}
        assert await call(client, "destroy_session", {"session": "other"}) == {
            "session": "other",
            "destroyed": True,
        }
        assert [s["name"] for s in (await call(client, "list_sessions"))["sessions"]] == ["default"]


async def test_sessions_on_the_process_sandbox_with_quotas(connect, monkeypatch) -> None:
    async with connect() as client:
        monkeypatch.setenv("RLM_LIMITS__EXEC_TIMEOUT_S", "1")
        ran = await call(
            client, "execute_python", {"code": "import os\nos.getpid()", "sandbox": "process"}
        )
        assert ran["sandbox"] == "process" and ran["error"] is None
        slow = await call(
            client, "execute_python", {"code": "while True: pass", "session": "default"}
        )
        assert slow["error"] is not None and "exceeded the 1 s time limit" in slow["error"]


@pytest.mark.parametrize(
    ("tool", "args", "names"),
    [
        ("execute_python", {}, ["code", "Field required"]),
        ("execute_python", {"code": "1", "session": "bad name!"}, ["session", "bad name"]),
        ("execute_python", {"code": "1", "session": ""}, ["session"]),
        ("execute_python", {"code": "1", "sandbox": "dockr"}, ["sandbox", "Did you mean"]),
        ("get_repl_context", {"session": "ghost"}, ["no session named 'ghost'"]),
        ("get_repl_context", {"names": ["nope"]}, ["names[0]", "no variable 'nope'"]),
        ("set_repl_context", {"name": "1x", "value": 1}, ["name", "pattern"]),
        ("set_repl_context", {"name": "llm_query", "value": 1}, ["name:", "reserved"]),
        ("set_repl_context", {"name": "x"}, ["value", "Field required"]),
        ("destroy_session", {"session": "ghost"}, ["no session named 'ghost'"]),
        ("clear_repl_context", {"session": "ghost"}, ["no session named 'ghost'"]),
        ("set_project", {"name": "ghost"}, ["name:", "no project named 'ghost'"]),
        ("context_search", {"query": ""}, ["query"]),
        ("context_search", {"query": "x", "max_tokens": 0}, ["max_tokens"]),
        ("context_search", {"query": "   "}, ["query must be a non-empty string"]),
    ],
)
async def test_bad_input_gives_structured_errors(
    connect, tool: str, args: dict[str, Any], names: list[str]
) -> None:
    async with connect() as client:
        await call(client, "execute_python", {"code": "a = 1"})  # a default session exists
        text = await error(client, tool, args)
        for name in names:
            assert name in text, text


@pytest.mark.slow
# "remote" needs a sandbox host and its settings, "kubernetes" this machine's cluster:
# tests/sandbox runs them against those
@pytest.mark.parametrize(
    "kind", [kind for kind in SANDBOXES.names() if kind not in ("remote", "kubernetes")]
)
async def test_sessions_on_every_sandbox_kind(connect, kind: str) -> None:
    async with connect() as client:
        result = await client.call_tool(
            "execute_python",
            {
                "code": "hits = context_search('aardvark')\nprint(hits[0]['source'])",
                "sandbox": kind,
            },
        )
        text = result.content[0].text  # type: ignore[union-attr]
        if result.is_error and "is not installed" in text:
            pytest.skip(f"the {kind} sandbox cannot start here: {text}")
        assert not result.is_error, text
        assert result.structured_content is not None
        assert result.structured_content["sandbox"] == kind
        assert result.structured_content["stdout"] == "docs/animals.md\n"


async def test_a_session_keeps_its_kind(connect) -> None:
    async with connect() as client:
        await call(client, "execute_python", {"code": "1"})  # the default kind: process
        text = await error(client, "execute_python", {"code": "1", "sandbox": "local"})
        assert "is a process sandbox, not local" in text


async def test_session_code_cannot_call_models(connect) -> None:
    async with connect() as client:
        for code in ["llm_query('hi')", "llm_query_batched(['a'])", "rlm_query('q')"]:
            result = await call(client, "execute_python", {"code": code})
            assert result["error"] is not None and "use the rlm_completion tool" in result["error"]
        result = await call(client, "execute_python", {"code": "rlm_query_batched(['q'])"})
        assert "rlm_query_batched is not available" in result["error"]


async def test_context_search_and_index_follow_the_project(
    connect, projects: dict[str, Path]
) -> None:
    async with connect() as client:
        indexed = await call(client, "index_project", {})
        assert indexed["root"] == str(projects["alpha"]) and indexed["added"] == 2
        again = await call(client, "index_project", {"rebuild": True})
        assert again["added"] == 2
        found = await call(client, "context_search", {"query": "aardvark", "max_tokens": 100})
        assert found["provider"] == "local"
        assert [h["source"] for h in found["hits"]] == ["docs/animals.md"]
        assert found["tokens"] == sum(h["tokens"] for h in found["hits"]) <= 100
        in_code = await call(
            client, "execute_python", {"code": "print(context_search('aardvark')[0]['source'])"}
        )
        assert in_code["stdout"] == "docs/animals.md\n"

        await call(client, "set_project", {"name": "beta"})
        assert (await call(client, "context_search", {"query": "aardvark"}))["hits"] == []
        beta = await call(client, "context_search", {"query": "baobab"})
        assert [h["source"] for h in beta["hits"]] == ["plants.md"]


async def test_projects_isolate_sessions_and_runs(
    connect, model_env, projects: dict[str, Path]
) -> None:
    async with connect() as client:
        model_env(scripted(root=[repl("FINAL('a')")]))
        run = await call(client, "rlm_completion", {"prompt": "q", "context": "c"})
        await call(client, "execute_python", {"code": "secret = 1", "session": "s"})

        listed = await call(client, "list_projects")
        assert listed["active"] == "alpha" and listed["current"] == "alpha"
        assert [p["name"] for p in listed["projects"]] == ["alpha", "beta"]
        switched = await call(client, "set_project", {"name": "beta"})
        assert switched["name"] == "beta" and switched["root"] == str(projects["beta"])
        assert (await call(client, "list_projects"))["active"] == "beta"

        assert (await call(client, "list_sessions"))["sessions"] == []
        assert "no session named 's'" in await error(client, "get_repl_context", {"session": "s"})
        assert json.loads((await client.read_resource("rlm://runs")).contents[0].text) == []
        with pytest.raises(MCPError, match="no run"):
            await client.read_resource(f"rlm://runs/{run['run_id']}")

        await call(client, "set_project", {"name": "alpha"})
        assert (await call(client, "get_repl_context", {"session": "s"}))["values"] == {"secret": 1}


async def test_without_a_project_the_working_folder_is_used(tmp_path: Path, model_env) -> None:
    (tmp_path / "here.md").write_text("# Here\nquokka\n")
    service = RLMService(overrides={"sandbox": "local", "model": None})
    async with Client(build_server(service)) as client:
        assert (await call(client, "list_projects")) == {
            "active": None,
            "current": None,
            "projects": [],
        }
        hits = (await call(client, "context_search", {"query": "quokka"}))["hits"]
        assert [h["source"] for h in hits] == ["here.md"]
        await call(client, "execute_python", {"code": "1"})
        assert (await call(client, "list_sessions"))["project"] is None


async def test_session_pool_limit() -> None:
    from rlmrt.config import load_config
    from rlmrt.context.search import ContextSearch

    pool = SessionPool(max_sessions=1)
    config = load_config()
    searcher = ContextSearch(config)
    try:
        await pool.get_or_create("", "one", config, searcher)
        with pytest.raises(Exception, match="1 sessions are open"):
            await pool.get_or_create("", "two", config, searcher)
    finally:
        await pool.aclose()


def test_progress_messages_and_plain_values() -> None:
    from rlmrt.events import Compacted, ModelCallStarted, TokenDelta

    ids = {"run_id": "r", "call_id": "c", "parent_call_id": None, "depth": 1}
    started = ModelCallStarted(**ids, model="m", purpose="sub", message_count=1)
    assert progress_message(started) == "depth 1: model call (sub) to m"
    compacted = Compacted(
        **{**ids, "depth": 0}, tokens_before=1, window_tokens=2, messages_before=3, summary_chars=4
    )
    assert progress_message(compacted) == "conversation compacted: 3 messages, 1 of 2 tok"
    delta = TokenDelta(**ids, text="x")
    assert progress_message(delta) is None
    assert plain_value({"a": [1]}) == {"a": [1]}
    assert plain_value(float("nan")) == "NaN"
    assert plain_value("x" * 200_000).endswith("... [truncated: 200,000 characters in all]")
    assert plain_value(["x" * 100_000]).startswith('["xxx')


async def test_session_code_runs_are_engine_events() -> None:
    service = RLMService(overrides={"sandbox": "local"})
    seen: list[Event] = []
    service.handlers.append(seen.append)
    try:
        await service.execute("x = 2\nprint(x * 21)", session="s", sandbox=None)
        await service.execute("1/0", session="s", sandbox=None)
    finally:
        await service.aclose()
    executed = [e for e in seen if isinstance(e, CodeExecuted)]
    assert [(e.code, e.stdout, e.iteration) for e in executed] == [
        ("x = 2\nprint(x * 21)", "42\n", 1),
        ("1/0", "", 2),
    ]
    assert executed[1].error is not None and "ZeroDivisionError" in executed[1].error
    assert executed[0].run_id == executed[1].run_id and executed[0].run_id.startswith("session-")


async def test_a_model_failure_is_a_tool_error(connect, model_env) -> None:
    from rlmrt.testing import Reply

    async with connect() as client:
        model_env(lambda request: Reply(status=401, text="bad key"))
        message = await error(client, "rlm_completion", {"prompt": "q", "context": "c"})
        assert "bad key" in message
