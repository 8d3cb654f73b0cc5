"""Settings options shared by `rlm run` and `rlm config show`.

Each option defaults to None, meaning "not given": `load_config` ignores None, so
rlm.toml < RLM_* environment variables < these flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

SETTINGS = "Settings (override RLM_* variables and rlm.toml)"

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
Model = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Root model, e.g. openai/gpt-4o-mini.", rich_help_panel=SETTINGS
    ),
]
SubModel = Annotated[
    str | None,
    typer.Option("--sub-model", help="Model for llm_query sub-calls.", rich_help_panel=SETTINGS),
]
ApiBase = Annotated[
    str | None,
    typer.Option("--api-base", help="OpenAI-compatible server URL.", rich_help_panel=SETTINGS),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key. Prefer RLM_API_KEY or the provider's variable: flags end up in "
        "shell history.",
        rich_help_panel=SETTINGS,
        show_default=False,
    ),
]
Sandbox = Annotated[
    str | None,
    typer.Option("--sandbox", help="Sandbox backend, e.g. local.", rich_help_panel=SETTINGS),
]
MaxDepth = Annotated[
    int | None,
    typer.Option("--max-depth", help="Deepest rlm_query recursion.", rich_help_panel=SETTINGS),
]
MaxIterations = Annotated[
    int | None,
    typer.Option("--max-iterations", help="Model/code rounds per run.", rich_help_panel=SETTINGS),
]
MaxCost = Annotated[
    float | None,
    typer.Option(
        "--max-cost", help="Cost budget in USD for the whole tree.", rich_help_panel=SETTINGS
    ),
]
MaxInputTokens = Annotated[
    int | None,
    typer.Option(
        "--max-input-tokens", help="Input-token budget for the tree.", rich_help_panel=SETTINGS
    ),
]
MaxOutputTokens = Annotated[
    int | None,
    typer.Option(
        "--max-output-tokens", help="Output-token budget for the tree.", rich_help_panel=SETTINGS
    ),
]
MaxModelCalls = Annotated[
    int | None,
    typer.Option(
        "--max-model-calls", help="Model-call budget for the tree.", rich_help_panel=SETTINGS
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Wall-time budget in seconds for the whole run (max_wall_time_s).",
        rich_help_panel=SETTINGS,
    ),
]
TrajectoryDir = Annotated[
    Path | None,
    typer.Option(
        "--trajectory-dir",
        help="Folder for trajectory files (default ~/.rlmrt/runs).",
        rich_help_panel=SETTINGS,
        file_okay=False,
    ),
]

QUOTAS = "Sandbox quotas (per execute; override RLM_* variables and rlm.toml)"
ExecTimeout = Annotated[
    float | None,
    typer.Option("--exec-timeout", help="Wall seconds per code block.", rich_help_panel=QUOTAS),
]
MemoryMb = Annotated[
    int | None,
    typer.Option("--memory-mb", help="Memory the code may use, in MB.", rich_help_panel=QUOTAS),
]
CpuS = Annotated[
    float | None,
    typer.Option("--cpu-s", help="CPU seconds per code block.", rich_help_panel=QUOTAS),
]
Processes = Annotated[
    int | None,
    typer.Option("--processes", help="Processes the code may run at once.", rich_help_panel=QUOTAS),
]
FileBytes = Annotated[
    int | None,
    typer.Option("--file-bytes", help="Largest file the code may write.", rich_help_panel=QUOTAS),
]
OutputBytes = Annotated[
    int | None,
    typer.Option("--output-bytes", help="Output kept per code block.", rich_help_panel=QUOTAS),
]

# setting name -> the flag that sets it, for messages and `rlm config show`
FLAG_NAMES = {
    "model": "--model",
    "sub_model": "--sub-model",
    "api_base": "--api-base",
    "api_key": "--api-key",
    "sandbox": "--sandbox",
    "max_depth": "--max-depth",
    "max_iterations": "--max-iterations",
    "max_cost_usd": "--max-cost",
    "max_input_tokens": "--max-input-tokens",
    "max_output_tokens": "--max-output-tokens",
    "max_model_calls": "--max-model-calls",
    "max_wall_time_s": "--timeout",
    "trajectory_dir": "--trajectory-dir",
    "timeout_s": "--exec-timeout",
    "memory_mb": "--memory-mb",
    "cpu_s": "--cpu-s",
    "processes": "--processes",
    "file_bytes": "--file-bytes",
    "output_bytes": "--output-bytes",
}


def model_flags(
    *,
    model: str | None,
    sub_model: str | None,
    api_base: str | None,
    api_key: str | None,
    sandbox: str | None,
    max_depth: int | None,
    max_iterations: int | None,
    max_cost: float | None,
    timeout: float | None,
    trajectory_dir: Path | None,
) -> dict[str, Any]:
    """The settings flags every run-like command shares, keyed by setting name."""
    return {
        "model": model,
        "sub_model": sub_model,
        "api_base": api_base,
        "api_key": api_key,
        "sandbox": sandbox,
        "max_depth": max_depth,
        "max_iterations": max_iterations,
        "max_cost_usd": max_cost,
        "max_wall_time_s": timeout,
        "trajectory_dir": trajectory_dir,
    }


def given(**flags: Any) -> dict[str, Any]:
    """The flags that were given (not None), keyed by setting name."""
    return {name: value for name, value in flags.items() if value is not None}


def load_settings(
    config_file: Path | None, flags: dict[str, Any], project: str | None = None
) -> RLMConfig:
    """`load_config` with the given flags inside the active project (see
    `rlmrt.projects`); errors name the flag, not "arguments"."""
    from rlmrt.errors import ConfigError
    from rlmrt.projects import active_project, load_project_config

    try:
        return load_project_config(
            active_project(project), config_file=config_file, **given(**flags)
        )
    except ConfigError as exc:
        message = str(exc)
        for name, flag in FLAG_NAMES.items():
            message = message.replace(f"{name} (arguments)", f"{name} ({flag})")
        if message == str(exc):
            raise
        raise ConfigError(message) from exc
