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
@opt.setting_flags
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Show the effective settings (flags > RLM_* variables > rlm.toml > defaults).

    Flags given here show what `rlm run` with the same flags would use. The API key
    is masked.
    """
    from rlmrt.config import keywords
    from rlmrt.config._sources import env_variable, gather
    from rlmrt.projects import active_project

    given = settings or {}
    config = opt.load_settings(config_file, given, project)
    active = active_project(project)
    path = config_file
    if path is None and active is not None and active.config_file.is_file():
        path = active.config_file
    found = gather(
        config_file=path,
        env=os.environ,
        search=active is None,
        defaults=active.defaults() if active is not None else {},
        defaults_source="project",
        overrides=given,
    )
    path = found.path
    flag_of = {(section, name): flag for flag, section, name in opt.flags().values()}
    data = config.public_dict()
    shown: dict[str, dict[str, Any]] = {}
    for section, name in keywords().values():
        place = (section, name)
        origin = next((s for s in reversed(found.sources) if s.holds(place)), None)
        if origin is None:
            source, where = "default", ""
        elif origin.name == "arguments":
            source, where = "flag", flag_of[place]
        elif origin.name == "environment":
            source, where = "env", env_variable(place)
        elif origin.name == "project" and active is not None:
            source, where = "project", active.name
        else:
            source, where = "file", str(path)
        shown[f"{section}.{name}"] = {"value": data[section][name], "source": source, "from": where}

    if as_json:
        out = {
            "config_file": str(path) if path else None,
            "project": active.name if active is not None else None,
            "settings": shown,
        }
        print(json.dumps(out, ensure_ascii=False))
        return
    console = Console()
    table = Table(
        title=f"settings (config file: {path or 'none found'})",
        title_justify="left",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold", min_width=12)
    table.add_column("source", no_wrap=True)
    for name, item in shown.items():
        value = item["value"]
        text = "-" if value is None else json.dumps(value) if isinstance(value, dict) else value
        source = item["source"]
        if source in ("env", "flag", "project"):
            source += f" ({item['from']})"
        table.add_row(name, str(text), source, style="dim" if item["source"] == "default" else "")
    console.print(table)
