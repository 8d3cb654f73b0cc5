"""Reading the settings sources: project defaults < rlm.toml < RLM_* variables < arguments.

pydantic-settings reads the file (`TomlConfigSettingsSource`) and the variables
(`EnvSettingsSource`, `RLM_<SECTION>__<FIELD>`). Each source stays its own dict until
the last step, so that an error, and `rlm config show`, can name where each value
came from. Imported only when settings are loaded: pydantic-settings costs ~25 ms.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from rlmrt.config import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    RENAMED,
    SECTIONS,
    RLMConfig,
    describe_errors,
    find_config_file,
    keywords,
    merge_settings,
    moved_hint,
    nest_keywords,
)
from rlmrt.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 in CI
    import tomli as tomllib

# The flat settings of before the tree, for "it moved to ..." errors.
OLD_FLAT_NAMES = frozenset(keywords()) | frozenset(RENAMED)


class _SettingsShape(BaseSettings, RLMConfig):
    """RLMConfig's fields as pydantic-settings sees them (never instantiated)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
    )


class _GivenEnvSource(EnvSettingsSource):
    """The RLM_* variables of a given mapping (os.environ, or a test's dict).

    "none" (any case) or an empty value sets a setting to None."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(_SettingsShape)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            key.lower(): None if value.strip().lower() in ("", "none") else value
            for key, value in self._given.items()
        }


@dataclass(frozen=True, slots=True)
class Source:
    """One source of settings: its name (for messages) and its values as a tree."""

    name: str
    values: dict[str, Any]

    def holds(self, path: tuple[str, ...]) -> bool:
        node: Any = self.values
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                return False
            node = node[part]
        return True


def env_variable(path: tuple[str, ...]) -> str:
    """The variable of a setting, e.g. ("budget", "max_depth") -> RLM_BUDGET__MAX_DEPTH."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(path).upper()


def read_file(path: Path) -> dict[str, Any]:
    """rlm.toml as a tree; flat settings of before the tree are errors naming their place."""
    try:
        data: dict[str, Any] = TomlConfigSettingsSource(_SettingsShape, toml_file=path).toml_data
    except OSError as exc:  # pragma: no cover - needs a file root cannot read
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8; save it as UTF-8"
        ) from exc
    moved = []
    for key, value in data.items():
        if key == "rlm" and isinstance(value, dict):
            moved += [f"{name} -> {moved_hint(name) or '?'}" for name in value]
            if not value:
                moved.append("the [rlm] table is gone")
        elif key == "rlm" or (key in OLD_FLAT_NAMES and not isinstance(value, dict)):
            moved.append(f"{key} -> {moved_hint(key) or '?'}")
    if moved:
        raise ConfigError(
            f"{path}: settings are tables now ([llm], [limits], [budget], [sandbox], [prompt],"
            f" [trajectory], [context]); move: {'; '.join(moved)}"
        )
    return data


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The RLM_<SECTION>__<FIELD> variables as a tree; flat RLM_<NAME> variables of
    before the tree are errors naming their new variable."""
    moved = []
    for key in env:
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or ENV_NESTED_DELIMITER in upper:
            continue
        name = upper[len(ENV_PREFIX) :].lower()
        if name in OLD_FLAT_NAMES and not (name in SECTIONS and env[key].lstrip().startswith("{")):
            place = keywords()[RENAMED.get(name, name)]
            moved.append(f"{key} -> {env_variable(place)}")
    if moved:
        raise ConfigError("settings variables follow the tree now; rename " + "; ".join(moved))
    try:
        return _GivenEnvSource(env)()
    except SettingsError as exc:
        raise ConfigError(f"invalid settings in the environment: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Sources:
    """Every source, lowest precedence first, and the rlm.toml that was read."""

    sources: list[Source]
    path: Path | None

    def origin(self, path: tuple[str, ...]) -> str:
        """Where the value at `path` came from: the latest source holding it."""
        for source in reversed(self.sources):
            if source.holds(path):
                if source.name == "environment":
                    return f"environment variable {env_variable(path)}"
                return source.name
        return "arguments"

    def config(self) -> RLMConfig:
        merged: dict[str, Any] = {}
        for source in self.sources:
            merged = merge_settings(merged, source.values)
        try:
            return RLMConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(describe_errors(exc, self.origin)) from exc


def gather(
    *,
    config_file: Path | None,
    env: Mapping[str, str],
    search: bool,
    defaults: Mapping[str, Any],
    defaults_source: str,
    overrides: Mapping[str, Any],
) -> Sources:
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    path = config_file or (find_config_file() if search else None)
    sources = [Source(defaults_source, nest_keywords(defaults))]
    if path is not None:
        sources.append(Source(str(path), read_file(path)))
    sources.append(Source("environment", read_env(env)))
    given = {k: v for k, v in overrides.items() if v is not None}
    sources.append(Source("arguments", merge_settings({}, nest_keywords(given))))
    return Sources(sources, path)
