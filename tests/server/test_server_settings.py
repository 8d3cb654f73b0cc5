"""The [server] section: its defaults, its profiles, and what `rlm config show` shows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from rlmrt.config import RLMConfig, ServerSettings, load_config
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


def test_rate_limits_are_on_by_default() -> None:
    server = RLMConfig().server
    assert server.key_requests_per_minute == 60 and server.key_max_concurrent == 4
    assert server.key_tokens_per_minute == 2_000_000
    assert server.tenant_requests_per_minute == 600 and server.tenant_max_concurrent == 16
    assert server.tenant_tokens_per_minute == 10_000_000
    assert server.rate_limit_storage == "memory://"
    with pytest.raises(ConfigError, match="key_requests_per_minute"):
        load_config(server={"key_requests_per_minute": -1})


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nosuch://x", "server.rate_limit_storage nosuch://x: unknown storage scheme"),
        (
            "nosuch://bob:hunter2@127.0.0.1:6379",
            "server.rate_limit_storage nosuch://bob:***@127.0.0.1:6379: unknown storage scheme",
        ),
    ],
)
def test_a_bad_rate_limit_storage_names_the_setting_not_its_password(
    uri: str, message: str
) -> None:
    from rlmrt.server.app import create_app

    config = load_config(model="openai/m", server={"rate_limit_storage": uri})
    assert "hunter2" not in str(config.public_dict())
    with pytest.raises(ConfigError) as raised:
        create_app(config)
    assert str(raised.value).startswith(message)
    assert "hunter2" not in str(raised.value)


def test_a_server_is_dead_after_two_heartbeats_at_least() -> None:
    assert ServerSettings(heartbeat_s=1, instance_stale_s=2).instance_stale_s == 2
    with pytest.raises(ValidationError, match="at least twice heartbeat_s"):
        ServerSettings(heartbeat_s=5, instance_stale_s=6)
