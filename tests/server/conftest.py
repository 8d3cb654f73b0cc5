"""Fixtures of the API server tests (helpers in `serving.py`)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving import (
    RLM,
    RLM_TOML,
    InProcessServer,
    make_keys,
    model_reply,
    server_env,
    start_in_process,
)

from rlmrt.testing import ScriptedOpenAIServer


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One server for the module (uvicorn on a thread here, so coverage sees it; `rlm
    serve` as a process is tested in test_serve_cli.py), with keys of tenants acme and
    beta (and a revoked and an expired one of acme)."""
    folder = tmp_path_factory.mktemp("api")
    (folder / "rlm.toml").write_text(RLM_TOML)
    model = ScriptedOpenAIServer(model_reply)
    model.start()
    try:
        env = server_env(folder / "home", model)
        keys = asyncio.run(make_keys(folder / "home" / "server.db"))
        expired = time.monotonic() + 1.1
        server = start_in_process(folder, env)
        server.keys = keys
        time.sleep(max(0.0, expired - time.monotonic()))  # the expiring key's second is over
        try:
            yield server
        finally:
            server.stop()
    finally:
        model.stop()


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `rlm` command with an environment."""

    def run(
        env: dict[str, str], *args: str, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*RLM, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
        )

    return run
