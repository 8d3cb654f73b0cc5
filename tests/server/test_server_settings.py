"""The [server] section: its defaults, its profiles, and what `rlm config show` shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlmrt.config import RLMConfig, load_config
from rlmrt.errors import ConfigError
from rlmrt.server.profiles import profile_configs


def test_defaults_listen_on_loopback_and_keep_the_database_at_home() -> None:
    server = RLMConfig().server
    assert server.host == "127.0.0.1" and server.port == 8000
    home = Path(os.environ["RLMRT_HOME"])
    assert server.database_url == f"sqlite+aiosqlite:///{home / 'server.db'}"


def test_profiles_are_the_settings_with_their_own_on_top(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text(
        '[budget]\nmax_depth = 2\n\n[server.profiles.fast]\nmax_depth = 0\nsandbox = "local"\n'
        "\n[server.profiles.deep]\nbudget = { max_iterations = 50 }\n"
    )
    config = load_config(model="openai/m")
    found = profile_configs(config)
    assert list(found) == ["rlm", "fast", "deep"]
    assert found["rlm"] is config
    assert (found["fast"].budget.max_depth, found["fast"].sandbox.kind) == (0, "local")
    assert (found["deep"].budget.max_depth, found["deep"].budget.max_iterations) == (2, 50)
    assert found["fast"].llm.model == "openai/m"
    assert list(profile_configs(config, ["deep"])) == ["deep"]
    with pytest.raises(ConfigError, match=r"no profile 'nope' \(profiles: deep, fast, rlm\)"):
        profile_configs(config, ["nope"])


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ({"x": {"max_dept": 1}}, "profile 'x': invalid settings: max_dept (profile): unknown"),
        ({"x": {"max_depth": 99}}, "profile 'x': invalid settings: budget.max_depth (profile)"),
        ({"x": {"server_port": 1}}, "profile 'x': a profile cannot change [server]"),
        ({" x": {}}, "profile name ' x': must be a non-empty name"),
    ],
)
def test_bad_profiles_name_the_profile_and_the_setting(
    tmp_path: Path, profiles: dict[str, dict[str, object]], message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(server_profiles=profiles)
    assert message in str(raised.value)


def test_the_database_password_is_masked_where_settings_are_shown() -> None:
    config = RLMConfig(database_url="postgresql+asyncpg://bob:hunter2@db:5432/rlm")
    assert config.public_dict()["server"]["database_url"] == (
        "postgresql+asyncpg://bob:***@db:5432/rlm"
    )
    assert "hunter2" not in str(config.public_dict())
