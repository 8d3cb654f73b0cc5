"""Fixtures of the MCP server tests: a scripted model server, two projects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlmrt.projects import ProjectRegistry
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer


@pytest.fixture
def model_env(
    serve: Callable[..., ScriptedOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, str]]:
    """Start a scripted model server; returns the RLM_* settings that point at it (also
    set in this process)."""

    def start(handler: Callable[[ChatRequest], Reply | str], **kwargs: Any) -> dict[str, str]:
        server = serve(handler, **kwargs)
        env = {
            "RLM_LLM__MODEL": "openai/test-model",
            "RLM_LLM__API_BASE": server.url,
            "RLM_LLM__API_KEY": "sk-test",
            "RLM_LLM__MAX_RETRIES": "0",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return start


@pytest.fixture
def projects(tmp_path: Path) -> dict[str, Path]:
    """Projects alpha and beta, each with its own files; alpha is current."""
    alpha = tmp_path / "alpha"
    (alpha / "docs").mkdir(parents=True)
    (alpha / "docs" / "animals.md").write_text("# Animals\nThe aardvark eats ants at night.\n")
    (alpha / "data.txt").write_text("line one\nline two\n")
    beta = tmp_path / "beta"
    beta.mkdir()
    (beta / "plants.md").write_text("# Plants\nThe baobab stores water.\n")
    registry = ProjectRegistry()
    registry.add("alpha", alpha)
    registry.add("beta", beta)
    registry.use("alpha")
    return {"alpha": alpha.resolve(), "beta": beta.resolve()}
