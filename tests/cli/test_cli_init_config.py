"""`rlm init`, `rlm config show` and `rlm --version`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmrt import __version__
from rlmrt.config import load_config


def settings(rlm_cli, *args: str) -> dict:
    result = rlm_cli("config", "show", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version(rlm_cli) -> None:
    result = rlm_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"rlm (rlmrt) {__version__}"


def test_help_lists_the_commands(rlm_cli) -> None:
    result = rlm_cli("--help")
    assert result.exit_code == 0
    for command in ("run", "logs", "init", "doctor", "config"):
        assert command in result.stdout


def test_init_writes_a_valid_commented_file(rlm_cli, tmp_path: Path) -> None:
    result = rlm_cli("init", "--path", str(tmp_path / "proj"))
    assert result.exit_code == 0, result.output
    written = tmp_path / "proj" / "rlm.toml"
    text = written.read_text()
    assert "# model = " in text  # commented: no model is chosen for the user
    assert "api_key =" not in text.replace("# Never", "")  # keys never go in the file
    config = load_config(config_file=written)
    assert config.sandbox.kind == "process"
    assert config.budget.max_depth == 1
    assert config.limits.exec_timeout_s == 30
    assert config.llm.model is None


def test_init_with_model_and_refusal_then_force(rlm_cli, tmp_path: Path) -> None:
    assert rlm_cli("init", "--model", 'openai/my "odd" model').exit_code == 0
    written = tmp_path / "rlm.toml"
    assert load_config(config_file=written).llm.model == 'openai/my "odd" model'
    written.write_text("# mine\n")

    refused = rlm_cli("init")
    assert refused.exit_code == 2
    assert "already exists" in refused.stderr
    assert "--force" in refused.stderr
    assert written.read_text() == "# mine\n"

    assert rlm_cli("init", "--force").exit_code == 0
    assert "max_iterations" in written.read_text()


def test_config_show_defaults(rlm_cli) -> None:
    data = settings(rlm_cli)
    assert data["config_file"] is None
    assert data["settings"]["budget.max_depth"] == {"value": 1, "source": "default", "from": ""}
    assert data["settings"]["llm.model"]["value"] is None
    assert data["settings"]["limits.exec_timeout_s"]["value"] == 30


def test_config_show_precedence_file_env_flag(
    rlm_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rlm.toml").write_text(
        '[llm]\nmodel = "file/m"\n[budget]\nmax_depth = 3\nmax_iterations = 7\n'
    )
    monkeypatch.setenv("RLM_LLM__MODEL", "env/m")
    monkeypatch.setenv("RLM_BUDGET__MAX_DEPTH", "4")

    data = settings(rlm_cli, "--max-depth", "5", "--exec-timeout", "9")
    found = data["settings"]
    assert data["config_file"] == str(tmp_path / "rlm.toml")
    assert found["budget.max_iterations"]["value"] == 7
    assert found["budget.max_iterations"]["source"] == "file"
    assert found["llm.model"] == {"value": "env/m", "source": "env", "from": "RLM_LLM__MODEL"}
    assert found["budget.max_depth"] == {"value": 5, "source": "flag", "from": "--max-depth"}
    assert found["limits.exec_timeout_s"] == {
        "value": 9.0,
        "source": "flag",
        "from": "--exec-timeout",
    }
    assert found["sandbox.kind"]["source"] == "default"


def test_config_show_masks_the_key_and_finds_parent_config(
    rlm_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rlm.toml").write_text('[llm]\nmodel = "openai/x"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.setenv("RLM_LLM__API_KEY", "sk-very-secret")
    result = rlm_cli("config", "show")
    assert result.exit_code == 0
    assert "sk-very-secret" not in result.output
    assert "***" in result.stdout
    data = settings(rlm_cli)
    assert data["settings"]["llm.model"]["source"] == "file"
    assert data["settings"]["llm.api_key"] == {
        "value": "***",
        "source": "env",
        "from": "RLM_LLM__API_KEY",
    }


def test_config_show_table(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    result = rlm_cli("config", "show", "--model", "openai/flag-model")
    assert result.exit_code == 0
    line = next(x for x in result.stdout.splitlines() if "openai/flag-model" in x)
    assert "flag (--model)" in line
    assert "none found" in result.stdout


def test_config_show_bad_file(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("[budget]\nmax_depth = [oops\n")
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "not valid TOML" in result.stderr


def test_config_show_unknown_setting_in_file(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("[budget]\nmax_dept = 2\n")
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert "budget.max_dept" in result.stderr
    assert "unknown setting" in result.stderr


def test_config_show_flat_file_of_before_says_where_settings_moved(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("max_depth = 2\n")
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert "max_depth -> [budget] max_depth" in result.stderr


def test_bad_flag_value_names_the_flag(rlm_cli) -> None:
    result = rlm_cli("config", "show", "--max-wall-time", "0")
    assert result.exit_code == 2
    assert "budget.max_wall_time_s (--max-wall-time)" in result.stderr
    assert "--timeout" not in rlm_cli("run", "--help").stdout


def test_config_without_subcommand_shows_help(rlm_cli) -> None:
    result = rlm_cli("config")
    assert "show" in result.output


SERVER_LIMITS = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "daily_usd")
JWT_SETTINGS = ("jwks_url", "issuer", "audience", "tenant_claim", "algorithms", "leeway_s")


def test_every_setting_is_a_flag_derived_from_its_field(rlm_cli) -> None:
    from rlmrt.cli._options import flags
    from rlmrt.config import keywords

    # tables are set in rlm.toml; the [server] settings are `rlm serve`'s own flags
    server = {key for key, (section, _) in keywords().items() if section == "server"}
    assert server == {
        "server_host",
        "server_port",
        "database_url",
        "server_profiles",
        "rate_limit_storage",
        "files_dir",
        "max_upload_bytes",
        "max_request_bytes",
        "heartbeat_s",
        "instance_stale_s",
        "event_keepalive_s",
        *(f"{who}_{limit}" for who in ("key", "tenant") for limit in SERVER_LIMITS),
        *(f"jwt_{name}" for name in JWT_SETTINGS),
    }
    assert set(keywords()) - set(flags()) == {"prices", "alerts", *server}
    found = settings(
        rlm_cli, "--max-concurrent-runs", "3", "--no-save-trajectory", "--sandbox", "process"
    )["settings"]
    assert found["budget.max_concurrent_runs"] == {
        "value": 3,
        "source": "flag",
        "from": "--max-concurrent-runs",
    }
    assert found["trajectory.save"]["value"] is False
    assert found["sandbox.kind"]["from"] == "--sandbox"
    help_text = rlm_cli("run", "--help").stdout
    assert "--max-concurrent-runs" in help_text and "--max-wall-time" in help_text
    for command in ("chat", "mcp"):
        args = (command, "--help") if command == "chat" else ("mcp", "serve", "--help")
        assert "--exec-timeout" in rlm_cli(*args).stdout
