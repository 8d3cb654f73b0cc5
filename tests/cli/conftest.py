"""Fixtures for the `rlm` command tests: an in-process runner and a scripted server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rlmrt.cli.main import app
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

Invoke = Callable[..., Result]


@pytest.fixture
def rlm_cli() -> Invoke:
    """Run `rlm ARGS` in-process; checks that no exception escaped the command."""
    runner = CliRunner()

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        result = runner.invoke(app, list(args), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"the command raised {result.exception!r}") from result.exception
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def use_server(
    serve: Callable[..., ScriptedOpenAIServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Callable[..., ScriptedOpenAIServer]:
    """Start a scripted server and point the RLM_* settings at it."""

    def start(handler: Callable[[ChatRequest], Reply | str], **kwargs: Any) -> ScriptedOpenAIServer:
        server = serve(handler, **kwargs)
        monkeypatch.setenv("RLM_LLM__MODEL", "openai/test-model")
        monkeypatch.setenv("RLM_LLM__API_BASE", server.url)
        monkeypatch.setenv("RLM_LLM__API_KEY", "sk-test")
        monkeypatch.setenv("RLM_LLM__MAX_RETRIES", "0")
        return server

    return start
