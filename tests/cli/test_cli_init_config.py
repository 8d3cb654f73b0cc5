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
    assert config.sandbox == "local"
    assert config.max_depth == 1
    assert config.model is None


def test_init_with_model_and_refusal_then_force(rlm_cli, tmp_path: Path) -> None:
    assert rlm_cli("init", "--model", 'openai/my "odd" model').exit_code == 0
    written = tmp_path / "rlm.toml"
    assert load_config(config_file=written).model == 'openai/my "odd" model'
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
    assert data["settings"]["max_depth"] == {"value": 1, "source": "default", "from": ""}
    assert data["settings"]["model"]["value"] is None


def test_config_show_precedence_file_env_flag(
    rlm_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rlm.toml").write_text('model = "file/m"\nmax_depth = 3\nmax_iterations = 7\n')
    monkeypatch.setenv("RLM_LLM__MODEL", "env/m")
    monkeypatch.setenv("RLM_BUDGET__MAX_DEPTH", "4")

    data = settings(rlm_cli, "--max-depth", "5")
    found = data["settings"]
    assert data["config_file"] == str(tmp_path / "rlm.toml")
    assert found["max_iterations"]["value"] == 7
    assert found["max_iterations"]["source"] == "file"
    assert found["model"] == {"value": "env/m", "source": "env", "from": "RLM_LLM__MODEL"}
    assert found["max_depth"] == {"value": 5, "source": "flag", "from": "--max-depth"}
    assert found["sandbox"]["source"] == "default"


def test_config_show_masks_the_key_and_finds_parent_config(
    rlm_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rlm.toml").write_text('[rlm]\nmodel = "openai/x"\n')
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.setenv("RLM_LLM__API_KEY", "sk-very-secret")
    result = rlm_cli("config", "show")
    assert result.exit_code == 0
    assert "sk-very-secret" not in result.output
    assert "***" in result.stdout
    data = settings(rlm_cli)
    assert data["settings"]["model"]["source"] == "file"
    assert data["settings"]["api_key"] == {"value": "***", "source": "env", "from": "RLM_LLM__API_KEY"}


def test_config_show_table(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    result = rlm_cli("config", "show", "--model", "openai/flag-model")
    assert result.exit_code == 0
    line = next(x for x in result.stdout.splitlines() if "openai/flag-model" in x)
    assert "flag (--model)" in line
    assert "none found" in result.stdout


def test_config_show_bad_file(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("max_depth = [oops\n")
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "not valid TOML" in result.stderr


def test_config_show_unknown_setting_in_file(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("max_dept = 2\n")
    result = rlm_cli("config", "show")
    assert result.exit_code == 2
    assert "max_dept" in result.stderr
    assert "unknown setting" in result.stderr


def test_config_without_subcommand_shows_help(rlm_cli) -> None:
    result = rlm_cli("config")
    assert "show" in result.output
