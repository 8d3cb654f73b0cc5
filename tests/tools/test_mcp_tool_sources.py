"""MCP servers as tool sources: a real MCP server process (written with the SDK's
`MCPServer`, tests/tools/calc_server.py) started from settings, its tools called from
REPL code in a loop and in a batch on local, process and docker sandboxes, its schema
checked on the host, and its process gone when the run ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmrt.config import ToolSettings
from rlmrt.errors import ToolError
from rlmrt.events import Event, ToolCalled
from rlmrt.testing import scripted
from rlmrt.tools import open_toolbox

SERVER = Path(__file__).with_name("calc_server.py")
CALC = {"calc": {"command": sys.executable, "args": [str(SERVER)]}}

CODE = """\
total = 0
for i in range(4):
    total += tools.calc__add(i, b=i)
both = tools.batch([("calc__add", {"a": 1, "b": 2}), ("calc__fail", {"why": "no"})])
print(total, both[0], isinstance(both[1], Exception), both[1])
try:
    tools.calc__add("x", 1)
except TypeError as exc:
    print("bad:", exc)
print("server pid", tools.calc__pid())
FINAL(total + both[0])
"""


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


@pytest.mark.parametrize("kind", ["local", "process", "docker"])
def test_a_run_calls_an_mcp_servers_tools_and_stops_the_server(serve, make_rlm, kind: str) -> None:
    server = serve(scripted(root=[repl(CODE)]))
    rlm = make_rlm(server, sandbox=kind, mcp_servers=CALC)
    events: list[Event] = []
    rlm.subscribe(events.append)
    result = rlm.completion("add", context="c")
    assert (result.answer, result.partial) == ("15", False)  # 0+2+4+6 + 3
    system = server.requests[0].messages[0]["content"]
    assert "tools.calc__add(a: int, b: int) -> int: Add two integers." in system
    out = next(e for e in events if e.kind == "code_executed").stdout  # type: ignore[attr-defined]
    assert "12 3 True ToolError: tools.calc__fail() failed: Error executing tool fail" in out
    assert "bad: tools.calc__add() argument 'a': 'x' is not of type 'integer'" in out
    calls = [e for e in events if isinstance(e, ToolCalled)]
    assert [c.tool for c in calls].count("calc__add") == 4 + 1 + 1
    pid_call = [c for c in calls if c.tool == "calc__pid"]
    assert len(pid_call) == 1 and pid_call[0].ok
    # the server was started for the run and is gone with it: code got its pid
    pid = int(out.split("server pid ")[1].split()[0])
    assert pid != os.getpid()
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


async def test_the_toolbox_lists_validates_and_stops_the_server() -> None:
    box = await open_toolbox(ToolSettings(mcp=CALC))
    assert box is not None
    try:
        pid = await box.invoke(box.find("calc__pid"), [], {})
        assert _alive(pid)
        assert await box.invoke(box.find("calc__add"), [2], {"b": 3}) == 5
        with pytest.raises(TypeError, match=r"tools.calc__add\(\): 'b' is a required property"):
            await box.invoke(box.find("calc__add"), [1], {})
        with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
            await box.invoke(box.find("calc__add"), [1, 2, 3], {})
        with pytest.raises(ToolError, match="there is no tool named 'add'; offered tools: calc__"):
            box.find("add")
    finally:
        await box.aclose()
    assert not _alive(pid)
    await box.aclose()  # idempotent


@pytest.fixture
def http_calc() -> Iterator[str]:
    """The calc server on streamable HTTP at 127.0.0.1, stopped by its pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def test_a_run_calls_the_tools_of_a_streamable_http_server(serve, make_rlm, http_calc) -> None:
    code = 'FINAL(sum(tools.batch([("calc__add", {"a": i, "b": 1}) for i in range(5)])))'
    server = serve(scripted(root=[repl(code)]))
    rlm = make_rlm(server, sandbox="process", mcp_servers={"calc": {"url": http_calc}})
    assert rlm.completion("add", context="c").answer == "15"


async def test_a_server_that_cannot_start_is_named() -> None:
    code = "import sys; sys.exit('no database at /nowhere')"
    broken = {"bad": {"command": sys.executable, "args": ["-c", code]}}
    with pytest.raises(ToolError, match="MCP server 'bad' did not start: ") as failed:
        await open_toolbox(ToolSettings(mcp=broken))
    assert str(failed.value).endswith("; it said: no database at /nowhere")


def test_rlm_toml_configures_mcp_servers(tmp_path: Path) -> None:
    from rlmrt.config import load_config

    (tmp_path / "rlm.toml").write_text(
        textwrap.dedent(
            f"""
            [tools]
            call_timeout_s = 5

            [tools.mcp.calc]
            command = "{sys.executable}"
            args = ["{SERVER}"]
            """
        )
    )
    config = load_config()
    assert config.tools.call_timeout_s == 5
    assert config.tools.mcp["calc"].args == [str(SERVER)]
    assert os.fspath(SERVER).endswith("calc_server.py")
