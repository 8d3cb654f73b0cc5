"""`rlm config show`: the effective settings and where each one came from."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import ErrorHandlingGroup

config_app = typer.Typer(
    name="config",
    help="Inspect the settings.",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    add_completion=False,
)


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    config_file: opt.ConfigFile = None,
    model: opt.Model = None,
    sub_model: opt.SubModel = None,
    api_base: opt.ApiBase = None,
    api_key: opt.ApiKey = None,
    sandbox: opt.Sandbox = None,
    max_depth: opt.MaxDepth = None,
    max_iterations: opt.MaxIterations = None,
    max_cost: opt.MaxCost = None,
    timeout: opt.Timeout = None,
    trajectory_dir: opt.TrajectoryDir = None,
    project: opt.ProjectName = None,
) -> None:
    """Show the effective settings (flags > RLM_* variables > rlm.toml > defaults).

    Flags given here show what `rlm run` with the same flags would use. The API key
    is masked.
    """
    from rlmrt.config import ENV_PREFIX, find_config_file, read_config_file, read_env

    flags = opt.model_flags(
        model=model,
        sub_model=sub_model,
        api_base=api_base,
        api_key=api_key,
        sandbox=sandbox,
        max_depth=max_depth,
        max_iterations=max_iterations,
        max_cost=max_cost,
        timeout=timeout,
        trajectory_dir=trajectory_dir,
    )
    config = opt.load_settings(config_file, flags, project)
    from rlmrt.projects import active_project

    active = active_project(project)
    path = config_file
    if path is None and active is None:
        path = find_config_file()
    elif path is None and active is not None and active.config_file.is_file():
        path = active.config_file
    from_file = read_config_file(path) if path is not None else {}
    from_project = active.defaults() if active is not None else {}
    from_env = read_env(os.environ)
    from_flags = opt.given(**flags)

    settings: dict[str, dict[str, Any]] = {}
    for name, value in config.public_dict().items():
        if name in from_flags:
            source, where = "flag", opt.FLAG_NAMES[name]
        elif name in from_env:
            source, where = "env", f"{ENV_PREFIX}{name.upper()}"
        elif name in from_file:
            source, where = "file", str(path)
        elif name in from_project and active is not None:
            source, where = "project", active.name
        else:
            source, where = "default", ""
        settings[name] = {"value": value, "source": source, "from": where}

    if as_json:
        data = {
            "config_file": str(path) if path else None,
            "project": active.name if active is not None else None,
            "settings": settings,
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    console = Console()
    table = Table(
        title=f"settings (config file: {path or 'none found'})",
        title_justify="left",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold", min_width=12)
    table.add_column("source", no_wrap=True)
    for name, item in settings.items():
        value = item["value"]
        shown = "-" if value is None else json.dumps(value) if isinstance(value, dict) else value
        source = item["source"]
        if source in ("env", "flag", "project"):
            source += f" ({item['from']})"
        table.add_row(name, str(shown), source, style="dim" if item["source"] == "default" else "")
    console.print(table)
