"""Profiles: the names clients give as `model`, each with the settings of its runs."""

from __future__ import annotations

from collections.abc import Sequence

from rlmrt.config import DEFAULT_PROFILE, RLMConfig, config_with
from rlmrt.errors import ConfigError


def profile_configs(config: RLMConfig, only: Sequence[str] = ()) -> dict[str, RLMConfig]:
    """Each profile's settings: "rlm" is `config` itself, the `[server.profiles]`
    tables are `config` with their settings; `only` keeps the named ones."""
    found = {DEFAULT_PROFILE: config}
    for name, settings in config.server.profiles.items():
        found[name] = config_with(config, **settings)
    unknown = [name for name in only if name not in found]
    if unknown:
        raise ConfigError(
            f"no profile {', '.join(map(repr, unknown))} (profiles: {', '.join(sorted(found))});"
            " profiles are [server.profiles.NAME] tables of rlm.toml"
        )
    return {name: found[name] for name in only} if only else found
