"""Settings flags, derived from `RLMConfig`'s fields, for `rlm run`, `rlm chat` and
`rlm config show`.

`@setting_flags` adds one flag per setting (named after its keyword, help from its
description and bounds) to a command, which receives the given ones as `settings`.
Each flag defaults to None, meaning "not given": `load_config` ignores None, so
rlm.toml < RLM_* environment variables < these flags.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_args, get_origin

import typer
from pydantic import SecretStr

from rlmrt.config import keywords, setting_bounds, setting_field

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from rlmrt.config import RLMConfig

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead.")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Use this rlm.toml instead of searching the folder and its parents.",
        dir_okay=False,
        show_default=False,
    ),
]
ProjectName = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="Use this project's settings, runs and index (default: RLM_PROJECT, else the"
        " current project of `rlm project use`).",
        show_default=False,
    ),
]

# unit suffixes left out of flag names when two words or more remain (`--max-cost`)
UNIT_SUFFIXES = ("_usd", "_s")
SHORT_FLAGS = {"model": "-m"}
FLAG_TYPES: dict[Any, type] = {str: str, int: int, float: float, bool: bool, Path: Path}
# sections whose settings are not flags of every command: `rlm serve` has its own
SECTIONS_WITHOUT_FLAGS = ("server",)


def flag_name(keyword: str) -> str:
    """The flag of a setting: `max_cost_usd` -> `--max-cost`, `cpu_s` -> `--cpu-s`."""
    for suffix in UNIT_SUFFIXES:
        stem = keyword.removesuffix(suffix)
        if stem != keyword and "_" in stem:
            keyword = stem
            break
    return "--" + keyword.replace("_", "-")


def _flag_type(field: FieldInfo) -> type | None:
    """The plain type a flag parses to, or None when the field takes no flag (a table).
    A choice of strings (`Literal`) is a str flag; validation names the choices."""
    if get_origin(field.annotation) is Literal:
        return str
    options = [t for t in (get_args(field.annotation) or (field.annotation,)) if t is not None]
    options = [str if t is SecretStr else t for t in options if t is not type(None)]
    return FLAG_TYPES.get(options[0]) if len(options) == 1 else None


def _bounds(field: FieldInfo) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return ", ".join(
        f"{signs[name]} {value:,}" if isinstance(value, int) else f"{signs[name]} {value}"
        for name, value in setting_bounds(field).items()
    )


def _panel(section: str) -> str:
    # "\\[" keeps Rich from reading the table name as markup
    return f"Settings \\[{section}] (override RLM_{section.upper()}__* and rlm.toml)"


@functools.cache
def flags() -> dict[str, tuple[str, str, str]]:
    """Each setting's keyword -> (flag, section, field), for the settings a flag can set."""
    found = {}
    for key, (section, name) in keywords().items():
        if section in SECTIONS_WITHOUT_FLAGS:
            continue
        if _flag_type(setting_field(section, name)) is not None:
            found[key] = (flag_name(key), section, name)
    return found


def _parameter(key: str) -> inspect.Parameter:
    flag, section, name = flags()[key]
    field = setting_field(section, name)
    kind = _flag_type(field)
    bounds = _bounds(field)
    help_text = (field.description or "") + (f" [{bounds}]" if bounds else "")
    names = [flag]
    if kind is bool:
        names = [f"{flag}/--no-{flag.removeprefix('--')}"]
    if key in SHORT_FLAGS:
        names.append(SHORT_FLAGS[key])
    option = typer.Option(
        *names, help=help_text, rich_help_panel=_panel(section), show_default=False
    )
    annotation = Annotated[kind | None, option]  # type: ignore[valid-type]
    return inspect.Parameter(
        key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


def setting_flags(command: F) -> F:
    """Give `command` one flag per setting; it receives the given ones (not None) as
    its `settings` argument, keyed by keyword."""
    own = inspect.signature(command, eval_str=True)
    kept = [p for p in own.parameters.values() if p.name != "settings"]
    added = [_parameter(key) for key in flags()]

    @functools.wraps(command)
    def wrapper(**values: Any) -> Any:
        given = {key: values.pop(key) for key in flags()}
        return command(**values, settings={k: v for k, v in given.items() if v is not None})

    parameters = [*kept, *added]
    wrapper.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper  # type: ignore[return-value]


def load_settings(
    config_file: Path | None, settings: dict[str, Any], project: str | None = None
) -> RLMConfig:
    """`load_config` with the given flags inside the active project (see
    `rlmrt.projects`); errors name the flag, not "arguments"."""
    from rlmrt.errors import ConfigError
    from rlmrt.projects import active_project, load_project_config

    try:
        return load_project_config(active_project(project), config_file=config_file, **settings)
    except ConfigError as exc:
        message = str(exc)
        for flag, section, name in flags().values():
            message = message.replace(f"{section}.{name} (arguments)", f"{section}.{name} ({flag})")
        if message == str(exc):
            raise
        raise ConfigError(message) from exc
