"""`rlm init`: write a commented rlm.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlmrt.cli._errors import CLIUsageError

TEMPLATE = """\
# rlm.toml: settings for rlmrt (`rlm run`, the Python API, the servers).
# One table per section of the settings; each setting is also an RLM_<TABLE>__<NAME>
# environment variable (RLM_BUDGET__MAX_DEPTH=2) and an `rlm run` flag (--max-depth 2).
# Precedence: this file < RLM_* environment variables < arguments and flags.
# `rlm config show` prints the effective settings; `rlm doctor` checks the setup.

[llm]
# The root model, as provider/name (LiteLLM naming).
{model_line}
# A cheaper model for llm_query sub-calls (default: the root model).
# sub_model = "openai/gpt-4o-mini"
# An OpenAI-compatible server (vLLM, Ollama, LM Studio, a proxy).
# api_base = "http://127.0.0.1:8000/v1"
# Never write API keys here: set RLM_LLM__API_KEY or the provider's variable
# (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...).
# temperature = 0.0
# request_timeout_s = 120.0

[sandbox]
kind = "process"       # process, docker, wasm, remote, or local (trusted code only)
# url = "wss://sandboxes.example:8765"   # remote: a sandbox host (`rlm sandbox serve`);
# token_env = "RLM_SANDBOX_TOKEN"        # the variable holding its token

[limits]
# Per code execution: wall seconds, memory in MB, bytes of output kept.
exec_timeout_s = 30.0
memory_mb = 1024
# output_bytes = 1000000

[budget]
# The whole run tree (unset = unlimited).
max_depth = 1          # how deep rlm_query may recurse
max_iterations = 20    # model/code rounds per run
# max_model_calls = 200
# max_input_tokens = 2000000
# max_output_tokens = 200000
# max_cost_usd = 1.0
# max_wall_time_s = 600
# max_concurrent_runs = 8

[trajectory]
# One JSON-lines file per run; `rlm logs` reads them.
# dir = "~/.rlmrt/runs"
# save = true

# Prices for models LiteLLM does not know (USD per million tokens):
# [llm.prices."openai/my-local-model"]
# input_per_mtok = 0.0
# output_per_mtok = 0.0
"""


def render_template(model: str | None) -> str:
    line = f"model = {_toml_string(model)}" if model else '# model = "openai/gpt-4o-mini"'
    return TEMPLATE.format(model_line=line)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def init(
    path: Annotated[
        Path,
        typer.Option("--path", help="Folder to write rlm.toml in.", file_okay=False),
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing rlm.toml.")] = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Root model to write in.")
    ] = None,
) -> None:
    """Write a commented rlm.toml with the main settings."""
    from rlmrt.config import CONFIG_FILE_NAME

    target = path / CONFIG_FILE_NAME
    if target.exists() and not force:
        raise CLIUsageError(
            f"{target} already exists; not overwriting it", hint="pass --force to replace it"
        )
    path.mkdir(parents=True, exist_ok=True)
    target.write_text(render_template(model), encoding="utf-8")
    print(f"wrote {target}")
