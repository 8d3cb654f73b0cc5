from __future__ import annotations

from pathlib import Path

import pytest

from rlmrt.config import RLMConfig, find_config_file, load_config
from rlmrt.errors import ConfigError


def test_precedence_file_then_env_then_arguments(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text(
        'model = "openai/from-file"\nmax_depth = 3\nmax_iterations = 7\n'
    )
    env = {"RLM_MAX_DEPTH": "4", "RLM_MODEL": "openai/from-env", "OTHER": "x"}
    config = load_config(env=env, model="openai/from-arg")
    assert config.model == "openai/from-arg"
    assert config.max_depth == 4
    assert config.max_iterations == 7


def test_rlm_table_and_search_upwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rlm.toml").write_text('[rlm]\nsandbox = "local"\nmax_concurrency = 8\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_config_file() == tmp_path / "rlm.toml"
    assert load_config(env={}).max_concurrency == 8
    assert load_config(env={}, search=False).max_concurrency == 64


def test_errors_name_the_setting_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"max_depth \(arguments\): .*greater than or equal to 0"):
        load_config(env={}, max_depth=-1)
    with pytest.raises(ConfigError, match="environment variable RLM_MAX_ITERATIONS"):
        load_config(env={"RLM_MAX_ITERATIONS": "many"})
    with pytest.raises(
        ConfigError, match=r"sandbox .*unknown sandbox 'lokal'.*Did you mean 'local'"
    ):
        load_config(env={}, sandbox="lokal")
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(env={}, config_file=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("modle = 'x'\n")
    with pytest.raises(ConfigError, match=r"modle \(.*unknown.toml\): unknown setting"):
        load_config(env={}, config_file=unknown)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(env={}, config_file=tmp_path / "nope.toml")
    table = tmp_path / "table.toml"
    table.write_text("rlm = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        load_config(env={}, config_file=table)


def test_none_in_env_clears_and_key_is_masked() -> None:
    config = load_config(env={"RLM_MAX_COST_USD": "none", "RLM_API_KEY": "sk-secret"})
    assert config.max_cost_usd is None
    assert config.api_key_value() == "sk-secret"
    assert config.public_dict()["api_key"] == "***"
    assert "sk-secret" not in repr(config)
    assert RLMConfig().api_key_value() is None


def test_limits_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = RLMConfig(timeout_s=5, memory_mb=256, output_bytes=1000)
    assert (config.limits.timeout_s, config.limits.memory_mb) == (5, 256)
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "h"))
    assert RLMConfig().trajectory_dir == tmp_path / "h" / "runs"
    assert RLMConfig(trajectory_dir=Path("~/x")).trajectory_dir == Path.home() / "x"
