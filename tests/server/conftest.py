"""Fixtures of the API server tests (helpers in `serving.py`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from serving import (
    RLM,
    RLM_TOML,
    InProcessServer,
    serving,
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """One server for the module (uvicorn on a thread here, so coverage sees it; `rlm
    serve` as a process is tested in test_serve_cli.py), with keys of tenants acme and
    beta (and a revoked and an expired one of acme)."""
    folder = tmp_path_factory.mktemp("api")
    with serving(folder, RLM_TOML) as server:
        time.sleep(1.1)  # the expiring key's second is over
        yield server


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
