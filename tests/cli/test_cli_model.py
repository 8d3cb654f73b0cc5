"""`rlm model ...` and `rlm run` choosing the local model (no model server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlmrt.llm.provider_keys import PROVIDER_KEYS
from rlmrt.local import server as local_server


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    monkeypatch.setenv("RLMRT_MODELS_DIR", str(folder))
    return folder


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for names in PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for name in ("RLM_LLM__MODEL", "RLM_LLM__API_KEY", "RLM_LLM__API_BASE"):
        monkeypatch.delenv(name, raising=False)


def test_rlm_run_says_first_that_it_uses_the_local_model(
    rlm_cli, models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_keys(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(local_server, "llama_server_installed", lambda: True)
    result = rlm_cli("run", "how many lines?", "--trajectory-dir", str(tmp_path / "runs"))
    assert result.exit_code == 2  # a set-up to finish, like a missing model setting
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "rlm: using the local model qwen2.5-coder-1.5b"
        " (no model configured and no provider API key in the environment)"
    )
    assert "rlm model pull" in lines[1]


def test_model_commands_on_an_empty_cache(rlm_cli, models_dir: Path) -> None:
    listed = rlm_cli("model", "list", "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "qwen2.5-coder-1.5b" and row["default"] is True
    assert row["downloaded"] is False and row["serving"] is False
    assert row["path"] == str(models_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    removed = rlm_cli("model", "rm", "qwen2.5-coder-1.5b")
    assert removed.stdout == "qwen2.5-coder-1.5b was not downloaded\n"
    unknown = rlm_cli("model", "rm", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: unknown local model 'nope'")
    bad = rlm_cli("model", "pull", "--source", "ftp")
    assert bad.exit_code == 1 and "unknown source 'ftp'" in bad.stderr
    assert rlm_cli("model", "stop").stdout == "no server was running\n"
    serve = rlm_cli("model", "serve")
    assert serve.exit_code == 2 and "error:" in serve.stderr
