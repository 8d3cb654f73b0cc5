"""Fixtures of the API server tests (helpers in `serving.py`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import server_daemons
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[server_daemons.Postgres]:
    """One PostgreSQL for the session (`server_daemons` tests)."""
    server_daemons.need_daemons()
    with server_daemons.postgres() as found:
        yield found


@pytest.fixture
def postgres_url(postgres_server: server_daemons.Postgres) -> str:
    """A fresh database of the session's PostgreSQL."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One Redis for the session (`server_daemons` tests)."""
    server_daemons.need_daemons()
    with server_daemons.redis() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.server_daemons)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: SQLite (a file) and PostgreSQL (a fresh database
    of the session's server), for the storage tests that hold on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'server.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
