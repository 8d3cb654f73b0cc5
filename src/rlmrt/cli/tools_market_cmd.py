"""`rlm tools search TEXT` and `rlm tools install NAME[==VERSION]`: the marketplace
(an index of MCP servers and Python tool packages; see `rlmrt.tools._market`).

Installing grants nothing: the output says what to add to rlm.toml to offer the tools.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError

if TYPE_CHECKING:
    from rlmrt.tools._market import IndexEntry

__all__ = ["register"]

INDEX_VARIABLE = "RLMRT_TOOL_INDEX"

IndexOpt = Annotated[
    str | None,
    typer.Option(
        "--index",
        envvar=INDEX_VARIABLE,
        help=f"The tool index: a JSON file or http(s) URL in the MCP registry's server.json"
        f" format plus rlmrt's tool_packages (default: ${INDEX_VARIABLE}).",
    ),
]


def _entries(index: str | None) -> list[IndexEntry]:
    from rlmrt.tools._market import load_index

    if not index:
        raise CLIUsageError(f"no tool index: give --index FILE|URL or set {INDEX_VARIABLE}")
    return load_index(index)


def search(
    text: Annotated[str, typer.Argument(help="Words every result holds (any case).")],
    index: IndexOpt = None,
    as_json: opt.JsonOpt = False,
) -> None:
    """Search the tool index: MCP servers and Python tool packages."""
    from rlmrt.tools._market import search_index

    found = sorted(search_index(_entries(index), text), key=lambda e: e.name)
    if as_json:
        rows = [
            {
                "name": e.name,
                "kind": e.kind,
                "version": e.version,
                "description": e.description,
                "tools": list(e.tools),
            }
            for e in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        typer.echo(f"No tool index entry matches {text!r}.")
    for entry in found:
        what = "MCP server" if entry.kind == "mcp" else f"tools: {', '.join(entry.tools)}"
        typer.echo(f"{entry.name} {entry.version} ({what}): {entry.description}")


def install(
    name: Annotated[str, typer.Argument(help="NAME or NAME==VERSION, as the index lists it.")],
    index: IndexOpt = None,
    pip_index_url: Annotated[
        str | None,
        typer.Option("--pip-index-url", help="The package index pip installs from."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--as", help="The [tools.mcp.NAME] name of an MCP server."),
    ] = None,
    config_file: opt.ConfigFile = None,
) -> None:
    """Install a Python tool package with pip, or record an MCP server's launch command
    in rlm.toml (commented out). Grants nothing: the output says how to."""
    from rlmrt.tools._market import find_entry

    entry = find_entry(_entries(index), name)
    if entry.kind == "python":
        _install_package(entry, pip_index_url)
    else:
        _record_server(entry, key, config_file)


def _install_package(entry: IndexEntry, pip_index_url: str | None) -> None:
    from importlib import invalidate_caches
    from importlib.metadata import PackageNotFoundError, distribution

    from rlmrt.errors import ToolError
    from rlmrt.tools import ENTRY_POINT_GROUP

    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check"]
    command += ["--index-url", pip_index_url] if pip_index_url else []
    command.append(f"{entry.name}=={entry.version}")
    typer.echo(f"Installing {entry.name} {entry.version} with pip ...")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = [line for line in done.stderr.strip().splitlines() if line.strip()][-3:]
        raise ToolError(f"pip could not install {entry.name}=={entry.version}: " + " ".join(said))
    invalidate_caches()
    try:
        points = distribution(entry.name).entry_points.select(group=ENTRY_POINT_GROUP)
        tools = sorted(point.name for point in points)
    except PackageNotFoundError:  # installed where this interpreter does not look
        tools = sorted(entry.tools)
    typer.echo(f"Installed {entry.name} {entry.version}; its tools: {', '.join(tools) or 'none'}.")
    typer.echo("Nothing is granted: no run is offered these tools until rlm.toml grants them:")
    typer.echo("  [tools]")
    for tool in tools:
        typer.echo(f'  {tool} = "=={entry.version}"')
    typer.echo("and their needs (`rlm tools info NAME` lists them) in [tools.grants].")


def _record_server(entry: IndexEntry, key: str | None, config_file: Path | None) -> None:
    from rlmrt.config import CONFIG_FILE_NAME, find_config_file
    from rlmrt.tools._market import launch_command, mcp_table, server_key
    from rlmrt.tools._model import name_problem

    name = key or server_key(entry)
    problem = name_problem(name)
    if problem is not None or "__" in name:
        raise CLIUsageError(f"cannot name the server {name!r}: {problem or 'it holds __'}")
    launch = launch_command(entry)
    path = config_file or find_config_file() or Path.cwd() / CONFIG_FILE_NAME
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    heading = f"[tools.mcp.{name}]"
    if heading in text:
        raise CLIUsageError(
            f"{path} already has {heading} (commented out or not); pick another name with --as"
        )
    lines = [
        "",
        f"# `rlm tools install {entry.name}=={entry.version}`: the MCP server's launch command.",
        "# Nothing is granted: its tools are offered to runs (as"
        f" tools.{name}__TOOL) once you uncomment this table.",
        *(f"# {line}" for line in mcp_table(name, launch)),
    ]
    if launch.needs_env:
        lines.insert(3, f"# It needs the environment variables {', '.join(launch.needs_env)}.")
    if not text:
        lines.pop(0)  # no blank line to part it from what is above
    elif not text.endswith("\n"):
        lines.insert(0, "")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    typer.echo(f"Recorded {entry.name} {entry.version} in {path} as {heading}, commented out.")
    typer.echo("Nothing is granted: uncomment the table to offer its tools to runs.")
    if launch.needs_env:
        typer.echo(f"It needs these environment variables set: {', '.join(launch.needs_env)}.")


def register(app: typer.Typer) -> None:
    """Add `search` and `install` to `rlm tools`."""
    app.command("search")(search)
    app.command("install")(install)
