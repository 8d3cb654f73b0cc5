"""The real server process, spoken to by the SDK's own `ClientSession` over stdio and
over streamable HTTP: every tool, progress notifications, structured errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from expected import TOOLS, repl
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from rlmrt.config import default_home
from rlmrt.testing import scripted

pytestmark = pytest.mark.slow

SERVER = [sys.executable, "-m", "rlmrt.mcp", "serve", "--project", "alpha"]


def server_env(model: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/root"),
        "RLMRT_HOME": str(default_home()),
        # the server runs the code under test (a worktree's src put first), not the install
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        **model,
    }


async def structured(session: ClientSession, tool: str, args: dict[str, Any]) -> Any:
    result = await session.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def exercise(session: ClientSession) -> None:
    """List the tools, call each one, check progress and errors."""
    await session.initialize()
    assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS

    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    done = await session.call_tool(
        "rlm_completion",
        {"prompt": "Which animal?", "files": ["docs"]},
        progress_callback=on_progress,
    )
    assert not done.is_error, done.content
    run = done.structured_content
    assert run is not None
    assert run["answer"] == "docs/animals.md says hi"
    assert run["partial"] is False and run["usage"]["model_calls"] == 3
    messages = [m for _, m in progress]
    assert any(m and m.startswith("llm_query: ") for m in messages)
    assert messages[-1] is not None and messages[-1].startswith("run finished: final")

    resource = await session.read_resource(f"rlm://runs/{run['run_id']}")
    assert json.loads(resource.contents[0].text)["answer"] == run["answer"]  # type: ignore[union-attr]

    ran = await structured(session, "execute_python", {"code": "n = 6 * 7\nn"})
    assert ran["display"] == "42"
    await structured(session, "set_repl_context", {"name": "words", "value": ["a", "b"]})
    got = await structured(session, "get_repl_context", {})
    assert got["values"] == {"n": 42, "words": ["a", "b"]}
    await structured(session, "clear_repl_context", {})
    assert (await structured(session, "get_repl_context", {}))["values"] == {}
    sessions = await structured(session, "list_sessions", {})
    assert [s["name"] for s in sessions["sessions"]] == ["default"]
    await structured(session, "destroy_session", {"session": "default"})
    assert (await structured(session, "list_sessions", {}))["sessions"] == []

    indexed = await structured(session, "index_project", {"rebuild": True})
    assert indexed["added"] == 2 and indexed["index"].endswith("projects/alpha/index.sqlite")
    hits = (await structured(session, "context_search", {"query": "aardvark"}))["hits"]
    assert [h["source"] for h in hits] == ["docs/animals.md"]
    projects = await structured(session, "list_projects", {})
    assert projects["active"] == "alpha"
    await structured(session, "set_project", {"name": "beta"})
    assert (await structured(session, "context_search", {"query": "aardvark"}))["hits"] == []

    for tool, args, needle in [
        ("rlm_completion", {"prompt": "q", "max_depth": -1}, "max_depth"),
        ("execute_python", {"code": 5}, "code"),
        ("set_project", {"name": "ghost"}, "no project named 'ghost'"),
        ("context_search", {"query": "x", "max_tokens": "lots"}, "max_tokens"),
    ]:
        bad = await session.call_tool(tool, args)
        assert bad.is_error
        text = bad.content[0].text  # type: ignore[union-attr]
        assert needle in text and "Traceback" not in text


def model_script() -> Any:
    return scripted(
        root=[
            repl("src = context_search('aardvark ants')[0]['source']\nprint(src)"),
            repl("FINAL(src + ' says ' + llm_query('greet'))"),
        ],
        sub="hi",
    )


async def test_stdio(model_env, projects: dict[str, Path]) -> None:
    params = StdioServerParameters(
        command=SERVER[0], args=SERVER[1:], env=server_env(model_env(model_script()))
    )
    with (default_home() / "stderr.log").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await exercise(session)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_server(model_env, projects: dict[str, Path]) -> Iterator[str]:
    """The server process on a free port of 127.0.0.1; stopped by its PID."""
    port = free_port()
    log = (default_home() / "http.log").open("w")
    proc = subprocess.Popen(
        [*SERVER, "--http", "--port", str(port)],
        env=server_env(model_env(model_script())),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {(default_home() / 'http.log').read_text()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            proc.kill()
            proc.wait()
        log.close()


async def test_streamable_http(http_server: str) -> None:
    async with (
        streamable_http_client(http_server) as (read, write),
        ClientSession(read, write) as session,
    ):
        await exercise(session)


def test_http_refuses_other_hosts(http_server: str) -> None:
    """A request naming another host (DNS rebinding from a web page) is refused."""
    reply = httpx.post(
        http_server,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"},
    )
    assert reply.status_code in (400, 403, 421)
