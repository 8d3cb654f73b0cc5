"""`rlm tools list` and `rlm tools info NAME`: the tools installed packages provide
(entry-point group `rlmrt.tools`), whether the settings grant them, and what they need."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError, ErrorHandlingGroup

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig, ToolSettings
    from rlmrt.tools import Tool

tools_app = typer.Typer(
    name="tools",
    help="Tools code may call as tools.NAME(...): installed, granted, needs.",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)
JsonOpt = opt.JsonOpt
McpOpt = Annotated[
    bool, typer.Option("--mcp", help="Also start the [tools.mcp.*] servers and list their tools.")
]


def _status(tool: Tool, settings: ToolSettings) -> str:
    """Whether a run would offer `tool`, and if not why."""
    from rlmrt.errors import ConfigError
    from rlmrt.tools._discovery import check_pin, needs_refusal

    if tool.source is not None and not tool.source.startswith("mcp server"):
        grant = settings.granted.get(tool.name)
        if grant is None:
            return f'not granted (add {tool.name} = "*" or a version pin to [tools])'
        try:
            check_pin(tool, grant.version)
        except ConfigError as exc:
            return f"refused: {exc}"
    refusal = needs_refusal(tool, settings)
    return f"not offered: {refusal}" if refusal else "offered"


def _row(tool: Tool, config: RLMConfig) -> dict[str, Any]:
    return {
        "name": tool.name,
        "version": tool.version,
        "source": tool.source,
        "signature": f"tools.{tool.signature()}",
        "description": tool.description,
        "needs": {
            "network": tool.needs.network,
            "paths": list(tool.needs.paths),
            "secrets": list(tool.needs.secrets),
        },
        "status": _status(tool, config.tools),
        "input_schema": tool.input_schema,
    }


def _found(config: RLMConfig, with_mcp: bool) -> tuple[list[Tool], dict[str, str]]:
    """Installed tools (and, with `with_mcp`, the MCP servers' tools); broken entries."""
    from rlmrt.tools import installed_tools

    tools: list[Tool] = []
    broken: dict[str, str] = {}
    for name, entry in sorted(installed_tools().items()):
        if entry.tool is None:
            broken[name] = f"{entry.package}: {entry.error}"
        else:
            tools.append(entry.tool)
    if with_mcp and config.tools.mcp:
        tools += asyncio.run(_mcp_tools(config))
    return tools, broken


async def _mcp_tools(config: RLMConfig) -> list[Tool]:
    from rlmrt.tools._mcp import open_servers

    found = await open_servers(config.tools.mcp)
    for tool in found:
        await tool.aclose()
    return found


@tools_app.command("list")
def list_tools(
    as_json: JsonOpt = False, mcp: McpOpt = False, config_file: opt.ConfigFile = None
) -> None:
    """The installed tools, their versions and whether runs are offered them."""
    config = opt.load_settings(config_file, {})
    tools, broken = _found(config, mcp)
    rows = [_row(tool, config) for tool in tools]
    if as_json:
        typer.echo(json.dumps({"tools": rows, "broken": broken}, indent=2))
        return
    if not rows and not broken:
        typer.echo(
            "No tools installed (packages provide them in the rlmrt.tools entry-point group)."
        )
    for row in rows:
        typer.echo(f"{row['name']} {row['version']} ({row['source'] or 'given'}): {row['status']}")
    for name, why in broken.items():
        typer.echo(f"{name}: cannot load ({why})")
    if config.tools.mcp and not mcp:
        servers = ", ".join(config.tools.mcp)
        typer.echo(f"MCP servers configured: {servers} (--mcp starts them to list their tools)")


@tools_app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="The tool's name.")],
    as_json: JsonOpt = False,
    mcp: McpOpt = False,
    config_file: opt.ConfigFile = None,
) -> None:
    """A tool's signature, schema, version, needs, source package and status."""
    config = opt.load_settings(config_file, {})
    tools, broken = _found(config, mcp)
    if name in broken:
        raise CLIUsageError(f"tool {name!r} cannot load: {broken[name]}")
    found = next((t for t in tools if t.name == name), None)
    if found is None:
        known = ", ".join(t.name for t in tools) or "none"
        hint = "MCP servers' tools are listed with --mcp" if config.tools.mcp and not mcp else None
        raise CLIUsageError(f"no installed tool named {name!r} (installed: {known})", hint=hint)
    row = _row(found, config)
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    needs = found.needs.describe()
    for label, value in (
        ("tool", row["signature"]),
        ("description", found.description),
        ("version", found.version),
        ("source", found.source or "given"),
        ("needs", needs),
        ("status", row["status"]),
        ("schema", json.dumps(found.input_schema, indent=2)),
    ):
        typer.echo(f"{label}: {value}")
