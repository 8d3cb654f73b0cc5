"""Bad input gives one clear `error:` line on stderr, the right exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import rlmrt.cli.run_cmd as run_cmd
from rlmrt.errors import ModelAuthError

UNUSED_SERVER = ["--model", "openai/test-model", "--api-base", "http://127.0.0.1:9/v1"]


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[0].startswith("error: ")
    assert all(x.startswith(("error: ", "hint: ")) for x in lines), stderr
    return lines[0]


def test_missing_context_file(rlm_cli, tmp_path: Path) -> None:
    result = rlm_cli("run", "q", "--context", str(tmp_path / "nope.txt"), *UNUSED_SERVER)
    assert result.exit_code == 2
    assert "context path does not exist" in one_error_line(result.stderr)
    assert "nope.txt" in result.stderr
    assert result.stdout == ""


def test_binary_context_file(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00")
    result = rlm_cli("run", "q", "--context", "blob.bin", *UNUSED_SERVER)
    assert result.exit_code == 2
    assert "not UTF-8" in one_error_line(result.stderr)


def test_unknown_sandbox_suggests_a_name(rlm_cli) -> None:
    result = rlm_cli("run", "q", "--sandbox", "locl", *UNUSED_SERVER)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "unknown sandbox 'locl'" in line
    assert "Did you mean 'local'?" in line


def test_negative_max_depth_names_the_flag(rlm_cli) -> None:
    result = rlm_cli("run", "q", "--max-depth", "-1", *UNUSED_SERVER)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "max_depth (--max-depth)" in line
    assert "greater than or equal to 0" in line


def test_bad_env_value_names_the_variable(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_BUDGET__MAX_ITERATIONS", "lots")
    result = rlm_cli("run", "q", *UNUSED_SERVER)
    assert result.exit_code == 2
    assert "RLM_BUDGET__MAX_ITERATIONS" in one_error_line(result.stderr)


def test_bad_rlm_toml(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("model = \n")
    result = rlm_cli("run", "q")
    assert result.exit_code == 2
    assert "not valid TOML" in one_error_line(result.stderr)
    assert "rlm config show" in result.stderr  # the hint


def test_missing_config_file_flag(rlm_cli, tmp_path: Path) -> None:
    result = rlm_cli("run", "q", "--config", str(tmp_path / "other.toml"))
    assert result.exit_code == 2
    assert "config file not found" in one_error_line(result.stderr)


def test_no_model(rlm_cli, monkeypatch) -> None:
    # a provider key but no model: nothing says which model (without a key, the
    # local model is used: tests/cli/test_cli_model.py)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    result = rlm_cli("run", "q")
    assert result.exit_code == 2
    assert "no model" in one_error_line(result.stderr)
    assert "--model" in result.stderr


def test_empty_prompt(rlm_cli) -> None:
    result = rlm_cli("run", "  ", *UNUSED_SERVER)
    assert result.exit_code == 2
    assert "prompt" in one_error_line(result.stderr)


def test_missing_prompt_is_typers_usage_error(rlm_cli) -> None:
    result = rlm_cli("run")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_stdin_cannot_mix_with_paths(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    result = rlm_cli("run", "q", "-c", "-", "-c", "a.txt", *UNUSED_SERVER, input="x")
    assert result.exit_code == 2
    assert "stdin" in one_error_line(result.stderr)


def test_unreachable_server_is_a_run_error(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_LLM__MAX_RETRIES", "0")
    result = rlm_cli("run", "q", *UNUSED_SERVER, "--quiet")
    assert result.exit_code == 1
    assert one_error_line(result.stderr)
    assert result.stdout == ""


def test_run_error_exit_code(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ModelAuthError("the server rejected the API key", status=401)

    monkeypatch.setattr(run_cmd, "_execute", fail)
    result = rlm_cli("run", "q", *UNUSED_SERVER)
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: the server rejected the API key"


def test_ctrl_c_exits_130(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_cmd, "_execute", interrupt)
    result = rlm_cli("run", "q", *UNUSED_SERVER)
    assert result.exit_code == 130
    assert one_error_line(result.stderr) == "error: interrupted"


def test_os_error_exit_code(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "/tmp/x")

    monkeypatch.setattr(run_cmd, "_execute", disk_full)
    result = rlm_cli("run", "q", *UNUSED_SERVER)
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == "error: No space left on device: /tmp/x"
