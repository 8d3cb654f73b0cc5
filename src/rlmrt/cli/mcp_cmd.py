"""`rlm mcp serve` and `rlm mcp config`: rlmrt as an MCP server for Claude and others."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import ErrorHandlingGroup

mcp_app = typer.Typer(
    name="mcp",
    help="Serve rlmrt's tools over the Model Context Protocol (Claude Desktop/Code).",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_PORT = 8765
SERVER_KEY = "rlmrt"


@mcp_app.command("serve")
@opt.setting_flags
def serve(
    http: Annotated[
        bool,
        typer.Option("--http", help="Serve streamable HTTP on 127.0.0.1 instead of stdio."),
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port of the HTTP server.")
    ] = DEFAULT_PORT,
    project: opt.ProjectName = None,
    config_file: opt.ConfigFile = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Serve the MCP tools: on stdin/stdout (what Claude Desktop/Code start), or with
    --http at http://127.0.0.1:PORT/mcp."""
    from rlmrt.mcp.server import serve as run_server
    from rlmrt.mcp.service import RLMService

    overrides = settings or {}
    # fail now, with the flag's name, rather than at the first tool call
    opt.load_settings(config_file, overrides, project)
    service = RLMService(project=project, config_file=config_file, overrides=overrides)
    run_server(service, transport="http" if http else "stdio", host="127.0.0.1", port=port)


def rlm_executable() -> str:
    """The absolute path of the `rlm` script of this installation."""
    beside = Path(sys.executable).with_name("rlm")
    if beside.is_file():
        return str(beside)
    found = shutil.which("rlm")
    return str(Path(found).resolve()) if found else str(beside)


@mcp_app.command("config")
def config(
    project: Annotated[
        str | None,
        typer.Option("--project", help="Pin the server to this project.", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the claude_desktop_config.json snippet.")
    ] = False,
) -> None:
    """Print the claude_desktop_config.json snippet and the `claude mcp add` command."""
    if project is not None:
        from rlmrt.projects import ProjectRegistry

        ProjectRegistry().get(project)
    args = ["mcp", "serve", *(["--project", project] if project else [])]
    command = rlm_executable()
    snippet = {"mcpServers": {SERVER_KEY: {"command": command, "args": args}}}
    text = json.dumps(snippet, indent=2)
    if as_json:
        print(text)
        return
    print("Claude Desktop: add this to claude_desktop_config.json")
    print("(macOS: ~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\)")
    print()
    print(text)
    print()
    print("Claude Code:")
    print()
    print(f"claude mcp add {SERVER_KEY} -- {shlex.join([command, *args])}")


def main() -> None:
    mcp_app(prog_name="rlm mcp")
