"""Projects: named profiles, each with its own root folder, settings, index and runs.

A project is a name and a root folder. Its settings are `ROOT/rlm.toml` (when there
is one); its run logs, context index, MCP sessions and memory live under
`RLMRT_HOME/projects/NAME/`, so nothing of one project is visible from another. The
registry is `RLMRT_HOME/projects.json`:

    {"current": "docs", "projects": {"docs": {"root": "/home/me/docs"}}}

The active project is the one named by `--project` (or `set_project` in MCP), else
`RLM_PROJECT`, else the current one (`rlm project use`), else none: then the settings
come from the rlm.toml found from the working folder, as without projects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt._home import default_home
from rlmrt.config import CONFIG_FILE_NAME, RLMConfig, load_config
from rlmrt.errors import ConfigError, UsageError

REGISTRY_FILE = "projects.json"
PROJECT_ENV = "RLM_PROJECT"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Project:
    """One project; every folder of it derives from its name and root."""

    name: str
    root: Path

    @property
    def home(self) -> Path:
        return default_home() / "projects" / self.name

    @property
    def config_file(self) -> Path:
        return self.root / CONFIG_FILE_NAME

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def index_path(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def memory_path(self) -> Path:
        return self.home / "memory.sqlite"

    def defaults(self) -> dict[str, Any]:
        """Settings the project gives unless its rlm.toml, RLM_* or flags say otherwise."""
        return {
            "trajectory_dir": self.runs_dir,
            "context_provider": "local",
            "context_root": self.root,
            "context_index": self.index_path,
            "memory_path": self.memory_path,
            "project_name": self.name,
        }

    def to_dict(self, *, current: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "root": str(self.root),
            "current": current,
            "config_file": str(self.config_file) if self.config_file.is_file() else None,
            "runs_dir": str(self.runs_dir),
            "index": str(self.index_path),
        }


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"bad project name {name!r}: use 1-64 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


class ProjectRegistry:
    """The projects file of one RLMRT_HOME. Every method reads the file afresh, so two
    processes (a CLI and an MCP server) see each other's changes."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or default_home()
        self.path = self.home / REGISTRY_FILE

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"current": None, "projects": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the projects file {self.path}: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
            raise ConfigError(f"the projects file {self.path} is damaged: no 'projects' table")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def list(self) -> list[Project]:
        data = self._read()
        return [
            Project(name, Path(entry["root"]))
            for name, entry in sorted(data["projects"].items())
            if isinstance(entry, dict) and isinstance(entry.get("root"), str)
        ]

    def current_name(self) -> str | None:
        current = self._read().get("current")
        return current if isinstance(current, str) else None

    def get(self, name: str) -> Project:
        for project in self.list():
            if project.name == name:
                return project
        known = ", ".join(p.name for p in self.list()) or "none yet; add one with `rlm project add`"
        raise UsageError(f"no project named {name!r} (projects: {known})")

    def add(self, name: str, root: Path) -> Project:
        check_name(name)
        folder = root.expanduser()
        if not folder.exists():
            raise UsageError(f"the project folder {folder} does not exist")
        if not folder.is_dir():
            raise UsageError(f"the project path {folder} is not a folder")
        data = self._read()
        if name in data["projects"]:
            taken = data["projects"][name].get("root")
            raise UsageError(f"a project named {name!r} already exists (root {taken})")
        project = Project(name, folder.resolve())
        data["projects"][name] = {"root": str(project.root)}
        self._write(data)
        return project

    def remove(self, name: str, *, purge: bool = False) -> Project:
        """Forget `name` (its root folder is never touched); `purge` also deletes its
        runs, index and memory under RLMRT_HOME."""
        project = self.get(name)
        data = self._read()
        del data["projects"][name]
        if data.get("current") == name:
            data["current"] = None
        self._write(data)
        if purge and project.home.is_dir():
            shutil.rmtree(project.home)
        return project

    def use(self, name: str | None) -> Project | None:
        """Make `name` the current project (None: no current project)."""
        project = self.get(name) if name is not None else None
        data = self._read()
        data["current"] = name
        self._write(data)
        return project

    def active(self, name: str | None = None) -> Project | None:
        """The project named `name`, else by RLM_PROJECT, else the current one."""
        chosen = name or os.environ.get(PROJECT_ENV) or self.current_name()
        return self.get(chosen) if chosen else None


def active_project(name: str | None = None) -> Project | None:
    return ProjectRegistry().active(name)


def load_project_config(
    project: Project | None, *, config_file: Path | None = None, **overrides: Any
) -> RLMConfig:
    """`load_config` inside `project`: its defaults, then its rlm.toml (unless
    `config_file` is given), then RLM_* variables, then `overrides`."""
    if project is None:
        return load_config(config_file=config_file, **overrides)
    path = config_file
    if path is None and project.config_file.is_file():
        path = project.config_file
    return load_config(
        config_file=path,
        search=False,
        defaults=project.defaults(),
        defaults_source=f"project {project.name}",
        **overrides,
    )


def run_folders() -> dict[str, Path]:
    """Every default trajectory folder, by project ("" for runs made outside one)."""
    found = {"": default_home() / "runs"}
    for project in ProjectRegistry().list():
        found[project.name] = project.runs_dir
    return found
