from __future__ import annotations

from pathlib import Path

import pytest

from rlmrt import Limits, Sandbox
from rlmrt.config import (
    SECTIONS,
    BudgetLimits,
    RLMConfig,
    config_with,
    find_config_file,
    keywords,
    load_config,
)
from rlmrt.errors import ConfigError


def test_precedence_file_then_env_then_arguments(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text(
        '[llm]\nmodel = "openai/from-file"\n[budget]\nmax_depth = 3\nmax_iterations = 7\n'
    )
    env = {"RLM_BUDGET__MAX_DEPTH": "4", "RLM_LLM__MODEL": "openai/from-env", "OTHER": "x"}
    config = load_config(env=env, config_file=tmp_path / "rlm.toml", model="openai/from-arg")
    assert config.llm.model == "openai/from-arg"
    assert config.budget.max_depth == 4
    assert config.budget.max_iterations == 7


def test_project_defaults_are_the_lowest_source(tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("[trajectory]\nsave = false\n")
    config = load_config(
        env={},
        config_file=tmp_path / "rlm.toml",
        defaults={"trajectory_dir": tmp_path / "runs", "save_trajectory": True},
    )
    assert (config.trajectory.dir, config.trajectory.save) == (tmp_path / "runs", False)


def test_tables_search_upwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rlm.toml").write_text('[sandbox]\nkind = "local"\n[budget]\nmax_concurrency = 8\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_config_file() == tmp_path / "rlm.toml"
    assert load_config(env={}).budget.max_concurrency == 8
    assert load_config(env={}, search=False).budget.max_concurrency == 64


def test_errors_name_the_setting_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"budget.max_depth \(arguments\): .*greater than or equal to 0"
    ):
        load_config(env={}, max_depth=-1)
    with pytest.raises(ConfigError, match="environment variable RLM_BUDGET__MAX_ITERATIONS"):
        load_config(env={"RLM_BUDGET__MAX_ITERATIONS": "many"})
    with pytest.raises(
        ConfigError, match=r"sandbox.kind .*unknown sandbox 'lokal'.*Did you mean 'local'"
    ):
        load_config(env={}, sandbox="lokal")
    bad = tmp_path / "bad.toml"
    bad.write_text("[llm]\nmodel = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(env={}, config_file=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[llm]\nmodle = 'x'\n")
    with pytest.raises(ConfigError, match=r"llm.modle \(.*unknown.toml\): unknown setting"):
        load_config(env={}, config_file=unknown)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(env={}, config_file=tmp_path / "nope.toml")
    high = tmp_path / "high.toml"
    high.write_text("[limits]\nmemory_mb = 0\n")
    with pytest.raises(ConfigError, match=r"limits.memory_mb \(.*high.toml\): .*greater than 0"):
        load_config(env={}, config_file=high)


def test_flat_settings_of_before_the_tree_say_where_they_moved(tmp_path: Path) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text('model = "m"\ntimeout_s = 5\nsandbox = "process"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, config_file=flat)
    message = str(caught.value)
    assert "model -> [llm] model" in message
    assert "timeout_s -> [limits] exec_timeout_s" in message
    assert "sandbox -> [sandbox] kind" in message
    table = tmp_path / "table.toml"
    table.write_text("[rlm]\nmax_depth = 2\n")
    with pytest.raises(ConfigError, match=r"max_depth -> \[budget\] max_depth"):
        load_config(env={}, config_file=table)
    with pytest.raises(ConfigError, match="RLM_MAX_DEPTH -> RLM_BUDGET__MAX_DEPTH"):
        load_config(env={"RLM_MAX_DEPTH": "2"})
    with pytest.raises(ConfigError, match="RLM_TIMEOUT_S -> RLM_LIMITS__EXEC_TIMEOUT_S"):
        load_config(env={"RLM_TIMEOUT_S": "2"})
    with pytest.raises(ConfigError, match="RLM_SANDBOX -> RLM_SANDBOX__KIND"):
        load_config(env={"RLM_SANDBOX": "process"})
    with pytest.raises(
        ConfigError, match=r"limits.timeout_s \(arguments\): unknown setting; .*exec_timeout_s"
    ):
        config_with(RLMConfig(), limits={"timeout_s": 3})
    # variables that are not settings stay untouched; a section may be one JSON variable
    env = {"RLM_PROJECT": "x", "RLM_SANDBOX": '{"kind": "process"}'}
    assert load_config(env=env, search=False).sandbox.kind == "process"


def test_none_in_env_clears_and_key_is_masked() -> None:
    config = load_config(
        env={"RLM_BUDGET__MAX_COST_USD": "none", "RLM_LLM__API_KEY": "sk-secret"},
        max_cost_usd=None,
    )
    assert config.budget.max_cost_usd is None
    assert config.api_key_value() == "sk-secret"
    assert config.public_dict()["llm"]["api_key"] == "***"
    assert "sk-secret" not in repr(config)
    assert RLMConfig().api_key_value() is None


def test_keywords_are_unique_across_the_tree() -> None:
    seen: dict[str, str] = {}
    for section, model in SECTIONS.items():
        for name in model.model_fields:
            path = f"{section}.{name}"
            found = [k for k, place in keywords().items() if place == (section, name)]
            assert len(found) == 1, path
            assert found[0] not in seen, f"{found[0]} names both {seen.get(found[0])} and {path}"
            seen[found[0]] = path
    assert len(keywords()) == sum(len(m.model_fields) for m in SECTIONS.values())


def test_every_setting_has_a_description() -> None:
    for section, model in SECTIONS.items():
        for name, field in model.model_fields.items():
            assert field.description, f"{section}.{name}"


def test_sections_and_keywords_as_arguments() -> None:
    config = RLMConfig(max_depth=2, sandbox="process", budget={"max_iterations": 5})
    assert (config.budget.max_depth, config.budget.max_iterations) == (2, 5)
    assert config.sandbox.kind == "process"
    changed = config_with(config, budget=BudgetLimits(max_cost_usd=1.5), exec_timeout_s=4)
    assert changed.budget.max_cost_usd == 1.5
    assert changed.budget.max_depth == 2  # a section merges with what is set
    assert changed.limits.exec_timeout_s == 4
    assert config.budget.max_cost_usd is None
    with pytest.raises(ConfigError, match=r"budget.max_iterations \(arguments\)"):
        config_with(config, max_iterations=0)
    assert BudgetLimits().max_concurrent_runs == 8


def test_limits_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = RLMConfig(exec_timeout_s=5, memory_mb=256, output_bytes=1000)
    assert config.limits == Limits(exec_timeout_s=5, memory_mb=256, output_bytes=1000)
    assert RLMConfig().limits == Limits()  # one declaration of the defaults
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "h"))
    assert RLMConfig().trajectory.dir == tmp_path / "h" / "runs"
    assert RLMConfig(trajectory_dir=Path("~/x")).trajectory.dir == Path.home() / "x"


def test_sandbox_facade_takes_the_limit_fields() -> None:
    with Sandbox("local", exec_timeout_s=7, memory_mb=300) as sandbox:
        assert (sandbox.limits.exec_timeout_s, sandbox.limits.memory_mb) == (7, 300)
    with pytest.raises(ConfigError, match="memory_mb"):
        Sandbox("local", memory_mb=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        Sandbox("local", timeout_s=3)
