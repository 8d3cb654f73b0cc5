"""`rlm mcp config` and the errors of `rlm mcp serve` before it serves."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rlmrt.cli.mcp_cmd import mcp_app, rlm_executable


def invoke(*args: str):
    result = CliRunner().invoke(mcp_app, list(args))
    assert "Traceback" not in result.output
    return result


def test_config_prints_the_desktop_snippet_and_the_claude_command() -> None:
    result = invoke("config")
    assert result.exit_code == 0
    command = rlm_executable()
    assert Path(command).is_absolute()
    start = result.stdout.index("{")
    end = result.stdout.rindex("}") + 1
    snippet = json.loads(result.stdout[start:end])
    assert snippet == {"mcpServers": {"rlmrt": {"command": command, "args": ["mcp", "serve"]}}}
    assert f"claude mcp add rlmrt -- {shlex.quote(command)} mcp serve" in result.stdout


def test_config_for_a_project(projects: dict[str, Path]) -> None:
    result = invoke("config", "--project", "beta", "--json")
    assert result.exit_code == 0
    server = json.loads(result.stdout)["mcpServers"]["rlmrt"]
    assert server["args"] == ["mcp", "serve", "--project", "beta"]
    missing = invoke("config", "--project", "ghost")
    assert missing.exit_code == 2
    assert "no project named 'ghost'" in missing.stderr


def test_serve_rejects_bad_settings_before_serving(projects: dict[str, Path]) -> None:
    ghost = invoke("serve", "--project", "ghost")
    assert ghost.exit_code == 2 and "no project named 'ghost'" in ghost.stderr
    sandbox = invoke("serve", "--sandbox", "dockr")
    assert sandbox.exit_code == 2 and "sandbox.kind (--sandbox)" in sandbox.stderr
    port = invoke("serve", "--http", "--port", "0")
    assert port.exit_code == 2


def test_module_entry_point_runs_the_commands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rlmrt.mcp", "config", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "mcpServers" in json.loads(done.stdout)


def test_serve_builds_the_service_from_its_flags(projects: dict[str, Path], monkeypatch) -> None:
    import rlmrt.mcp.server

    served: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(
        rlmrt.mcp.server, "serve", lambda service, **kw: served.append((service, kw))
    )
    result = invoke(
        "serve", "--http", "--port", "9999", "--project", "beta", "--sandbox", "process"
    )
    assert result.exit_code == 0, result.output
    service, options = served[0]
    assert options == {"transport": "http", "host": "127.0.0.1", "port": 9999}
    assert service.project.name == "beta"  # type: ignore[attr-defined]
    assert service.config().sandbox.kind == "process"  # type: ignore[attr-defined]
    invoke("serve")
    assert served[1][1]["transport"] == "stdio"
