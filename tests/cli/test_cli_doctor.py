"""`rlm doctor`: a healthy default install passes; broken parts fail; secrets stay out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def checks(rlm_cli, expect_exit: int) -> dict[str, dict]:
    result = rlm_cli("doctor", "--json")
    assert result.exit_code == expect_exit, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is (expect_exit == 0)
    return {c["name"]: c for c in data["checks"]}


def test_healthy_default_install(rlm_cli, tmp_path: Path) -> None:
    found = checks(rlm_cli, 0)
    for name in ("python", "rlmrt", "RestrictedPython", "litellm", "local sandbox", "settings"):
        assert found[name]["level"] == "ok", found[name]
    assert "print(1+1) -> 2" in found["local sandbox"]["detail"]
    assert "imported in" in found["litellm"]["detail"]
    assert found["trajectories"]["level"] == "ok"
    assert str(tmp_path / "rlmrt-home" / "runs") in found["trajectories"]["detail"]
    assert found["model"]["level"] == "warn"  # no model yet: a warning, not a failure
    assert "api_base" not in found  # nothing configured, nothing contacted
    assert not (tmp_path / "rlmrt-home").exists()  # doctor does not create the folder


def test_table_output(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = rlm_cli("doctor")
    assert result.exit_code == 0, result.output
    model_line = next(x for x in result.stdout.splitlines() if "no model configured" in x)
    assert " warn " in model_line
    assert "0 failed" in result.stdout


def test_bad_config_fails(rlm_cli, tmp_path: Path) -> None:
    (tmp_path / "rlm.toml").write_text("sandbox = 'dockr'\n")
    found = checks(rlm_cli, 1)
    assert found["settings"]["level"] == "fail"
    assert "unknown sandbox 'dockr'" in found["settings"]["detail"]


def test_key_names_never_values(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_MODEL", "anthropic/claude-x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123")
    result = rlm_cli("doctor", "--json")
    assert "sk-secret-value-123" not in result.output
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert found["model"]["level"] == "ok"
    keys = found["API keys"]
    assert keys["level"] == "warn"
    assert "anthropic/claude-x needs ANTHROPIC_API_KEY" in keys["detail"]
    assert "OPENAI_API_KEY" in keys["detail"]


def test_config_key_is_not_shown(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_MODEL", "openai/gpt-x")
    monkeypatch.setenv("RLM_API_KEY", "sk-other-secret")
    result = rlm_cli("doctor", "--json")
    assert result.exit_code == 0
    assert "sk-other-secret" not in result.output
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert found["API keys"] == {
        "name": "API keys",
        "level": "ok",
        "detail": "found: api_key (settings)",
    }


def test_api_base_reachable(rlm_cli, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda req: "unused")
    monkeypatch.setenv("RLM_MODEL", "openai/test-model")
    monkeypatch.setenv("RLM_API_BASE", server.url)
    found = checks(rlm_cli, 0)
    assert found["api_base"]["level"] == "ok"
    assert f"{server.url}/models answered" in found["api_base"]["detail"]
    assert found["API keys"]["level"] == "ok"  # a local server may need no key
    assert server.requests == []  # only GET /models, no completion


def test_api_base_unreachable_fails(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_API_BASE", "http://127.0.0.1:9/v1")
    found = checks(rlm_cli, 1)
    assert found["api_base"]["level"] == "fail"
    assert "127.0.0.1:9/v1/models" in found["api_base"]["detail"]


def test_trajectory_folder_not_writable(rlm_cli, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RLM_TRAJECTORY_DIR", str(tmp_path / "file"))
    found = checks(rlm_cli, 1)
    assert found["trajectories"]["level"] == "fail"
    assert "not a folder" in found["trajectories"]["detail"]
