"""Settings: `rlm.toml` < `RLM_*` environment variables < arguments (later wins).

`RLMConfig` is the one settings model for a run. `load_config()` merges the three
sources and names the source of any bad value in its error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from rlmrt._home import default_home
from rlmrt.errors import ConfigError
from rlmrt.sandbox.base import Limits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 in CI
    import tomli as tomllib

CONFIG_FILE_NAME = "rlm.toml"
ENV_PREFIX = "RLM_"


class ModelPrice(BaseModel):
    """A custom price in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class RLMConfig(BaseModel):
    """Everything that shapes a run. Budgets left as None are unlimited."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # models
    model: str | None = None
    sub_model: str | None = None
    api_base: str | None = None
    api_key: SecretStr | None = None
    sub_system_prompt: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=20)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    # sandbox
    sandbox: str = "local"
    timeout_s: float | None = Field(default=30.0, gt=0)
    memory_mb: int | None = Field(default=1024, gt=0)
    output_bytes: int = Field(default=1_000_000, gt=0)
    cpu_s: float | None = Field(default=None, gt=0)
    processes: int | None = Field(default=None, gt=0)
    file_bytes: int | None = Field(default=None, gt=0)

    # recursion and budgets
    max_depth: int = Field(default=1, ge=0, le=16)
    max_iterations: int = Field(default=20, ge=1)
    max_model_calls: int | None = Field(default=None, ge=1)
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_wall_time_s: float | None = Field(default=None, gt=0)
    max_concurrency: int = Field(default=64, ge=1, le=4096)
    # child runs (rlm_query) of one tree running at once, each with its sandbox; more queue
    max_concurrent_runs: int = Field(default=8, ge=1, le=1024)
    # started sandboxes kept ready for slow-starting kinds (docker, wasm, process); 0: off
    sandbox_pool: int = Field(default=2, ge=0, le=64)
    max_output_chars: int = Field(default=20_000, ge=200)
    # extra prompt rules for a family of models: "auto" (by the model's name), "small"
    # (models of <= 4B parameters), "default"
    prompt_profile: str = "auto"

    # compaction of the root conversation (None: the model's window from LiteLLM when
    # it knows the model, else no compaction)
    context_window_tokens: int | None = Field(default=None, ge=1)
    compact_at: float = Field(default=0.8, gt=0, le=1)

    # trajectories
    trajectory_dir: Path = Field(default_factory=lambda: default_home() / "runs")
    save_trajectory: bool = True

    # context search (`context_search()` in the REPL): "local" indexes `context_root`
    # (default: the working folder, or the project's root) into `context_index`
    # (default: a file under RLMRT_HOME/index); "snipara" uses SNIPARA_* variables
    context_provider: str | None = None
    context_root: Path | None = None
    context_index: Path | None = None

    @field_validator("sandbox")
    @classmethod
    def _known_sandbox(cls, value: str) -> str:
        from rlmrt.sandbox.facade import SANDBOXES

        try:
            return SANDBOXES.check(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("prompt_profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from rlmrt.prompt_profiles import profile_for

        try:
            profile_for(None, value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("trajectory_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("context_provider")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        from rlmrt.context.base import PROVIDERS

        if value is None or value.strip().lower() in ("", "none"):
            return None
        try:
            return PROVIDERS.check(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("context_root", "context_index")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @property
    def limits(self) -> Limits:
        return Limits(
            timeout_s=self.timeout_s,
            memory_mb=self.memory_mb,
            output_bytes=self.output_bytes,
            cpu_s=self.cpu_s,
            processes=self.processes,
            file_bytes=self.file_bytes,
        )

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def public_dict(self) -> dict[str, Any]:
        """The settings as plain data, with the API key masked."""
        data = self.model_dump(mode="json")
        if self.api_key is not None:
            data["api_key"] = "***"
        return data


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest rlm.toml from `start` (default: the working folder) upwards."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / CONFIG_FILE_NAME
        if path.is_file():
            return path
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:  # pragma: no cover - needs a file root cannot read
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    table = data.get("rlm", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [rlm] must be a table")
    return dict(table)


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The RLM_* variables that name a setting. Values stay strings; pydantic parses them."""
    fields = RLMConfig.model_fields
    found: dict[str, Any] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in fields and name != "prices":
            found[name] = None if value.strip().lower() in ("", "none") else value
    return found


def load_config(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    search: bool = True,
    defaults: Mapping[str, Any] | None = None,
    defaults_source: str = "defaults",
    **overrides: Any,
) -> RLMConfig:
    """Merge `defaults` (a project's), rlm.toml, RLM_* variables and `overrides`
    (None values are ignored), later sources winning."""
    sources: list[tuple[str, dict[str, Any]]] = [(defaults_source, dict(defaults or {}))]
    path = config_file or (find_config_file() if search else None)
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    if path is not None:
        sources.append((str(path), read_config_file(path)))
    sources.append(("environment", read_env(os.environ if env is None else env)))
    sources.append(("arguments", {k: v for k, v in overrides.items() if v is not None}))

    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in sources:
        for key, value in values.items():
            merged[key] = value
            origin[key] = source
    try:
        return RLMConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from exc


def config_with(config: RLMConfig, **overrides: Any) -> RLMConfig:
    """A copy of `config` with `overrides` (None values are ignored), validated."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return RLMConfig.model_validate({**config.model_dump(), **given})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, dict.fromkeys(given, "arguments"))) from exc


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        where = origin.get(field, "arguments")
        if where == "environment":
            where = f"environment variable {ENV_PREFIX}{field.upper()}"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{field} ({where}): {message}")
    return "invalid settings: " + "; ".join(lines)
