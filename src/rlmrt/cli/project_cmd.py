"""`rlm project`: named projects (root folder, settings, index, runs); see rlmrt.projects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

project_app = typer.Typer(
    name="project",
    help="Named projects: each has its own root folder, rlm.toml, index and run logs.",
    no_args_is_help=True,
    add_completion=False,
)

NameArg = Annotated[str, typer.Argument(help="The project's name.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead.")]


@project_app.command("add")
def add(
    name: NameArg,
    path: Annotated[Path, typer.Argument(help="The project's root folder.", show_default=False)],
    use: Annotated[bool, typer.Option("--use", help="Also make it the current project.")] = False,
) -> None:
    """Add project NAME with its root folder PATH (its rlm.toml is PATH/rlm.toml)."""
    from rlmrt.projects import ProjectRegistry

    registry = ProjectRegistry()
    project = registry.add(name, path)
    if use:
        registry.use(name)
    print(f"added project {project.name}: {project.root}" + (" (current)" if use else ""))


@project_app.command("list")
def list_projects(as_json: JsonOpt = False) -> None:
    """List the projects; the current one is marked with *."""
    from rlmrt.projects import ProjectRegistry

    registry = ProjectRegistry()
    current = registry.current_name()
    projects = registry.list()
    if as_json:
        data = {
            "current": current,
            "projects": [p.to_dict(current=p.name == current) for p in projects],
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    if not projects:
        print("no projects yet; add one with `rlm project add NAME PATH`")
        return
    table = Table(title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("root", overflow="fold")
    table.add_column("rlm.toml", no_wrap=True)
    for project in projects:
        table.add_row(
            "*" if project.name == current else "",
            project.name,
            str(project.root),
            "yes" if project.config_file.is_file() else "-",
        )
    Console().print(table)


@project_app.command("use")
def use(
    name: Annotated[
        str | None, typer.Argument(help="The project to make current.", show_default=False)
    ] = None,
    none: Annotated[
        bool, typer.Option("--none", help="No current project: settings from the working folder.")
    ] = False,
) -> None:
    """Make NAME the current project: commands use it unless --project says otherwise."""
    from rlmrt.cli._errors import CLIUsageError
    from rlmrt.projects import ProjectRegistry

    if (name is None) == (not none):
        raise CLIUsageError("give a project NAME or --none (not both)")
    project = ProjectRegistry().use(name)
    print(f"current project: {project.name} ({project.root})" if project else "no current project")


@project_app.command("rm")
def remove(
    name: NameArg,
    purge: Annotated[
        bool,
        typer.Option(
            "--purge", help="Also delete its run logs, index and memory under RLMRT_HOME."
        ),
    ] = False,
) -> None:
    """Forget project NAME (its root folder is never touched)."""
    from rlmrt.projects import ProjectRegistry

    project = ProjectRegistry().remove(name, purge=purge)
    print(f"removed project {project.name}" + (f" and deleted {project.home}" if purge else ""))
