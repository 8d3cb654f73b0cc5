"""The daemons replicas share, started for the tests on 127.0.0.1 (a free port) and
stopped by PID: a PostgreSQL in a temp data folder (`initdb` + `postgres`, as the
`postgres` user when the tests run as root: initdb refuses root) and a `redis-server`
without persistence. Both come from `rlm setup server`."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rlmrt.setup.server import missing_daemons, postgres_binary, redis_binary

READY_WITHIN_S = 60
UNPRIVILEGED = "postgres"  # Debian's postgresql package makes this user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_daemons() -> None:
    """Skip when PostgreSQL or Redis is not installed, with the command that installs
    them; in CI (`CI` set) fail instead: there they must be."""
    missing = missing_daemons()
    if not missing:
        return
    reason = f"needs {', '.join(missing)}: rlm setup server"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the set-up must have installed them)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Postgres:
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its SQLAlchemy URL."""
        name = f"t_{secrets.token_hex(6)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        psql = postgres_binary("psql")
        assert psql is not None
        done = subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout


def _as_user() -> dict[str, Any]:
    """Popen's keywords that run a program as the unprivileged user when this is root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    """`sig` by PID, then reaped (killed when it does not end)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass  # not listening yet
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the daemon on port {port} did not come up:\n{log.read_text()}")
        time.sleep(0.1)


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL of its own (trust auth, 127.0.0.1 only) in a temp data folder."""
    initdb, server = postgres_binary("initdb"), postgres_binary("postgres")
    assert initdb is not None and server is not None
    folder = Path(tempfile.mkdtemp(prefix="rlmrt-pg-"))
    user = _as_user()
    try:
        if user:
            os.chown(folder, user["user"], user["group"])
        data = folder / "data"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            cwd=folder, capture_output=True, check=True, timeout=120, **user,
        )  # fmt: skip
        port = free_port()
        log = folder / "postgres.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [server, "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                 "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=200"],
                cwd=folder, stdout=out, stderr=subprocess.STDOUT, **user,
            )  # fmt: skip
        try:
            _wait_listening(port, process, log)
            found = Postgres(port)
            deadline = time.monotonic() + READY_WITHIN_S
            while subprocess.run(
                [postgres_binary("pg_isready") or "pg_isready", "-h", "127.0.0.1",
                 "-p", str(port)],
                capture_output=True, check=False,
            ).returncode != 0:  # fmt: skip
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield found
        finally:
            _stop(process, signal.SIGINT)  # PostgreSQL's fast shutdown
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis() -> Iterator[str]:
    """A redis-server without persistence; yields its `redis://` URL."""
    binary = redis_binary()
    assert binary is not None
    folder = Path(tempfile.mkdtemp(prefix="rlmrt-redis-"))
    port = free_port()
    log = folder / "redis.log"
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(folder), "--daemonize", "no"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            _wait_listening(port, process, log)
            yield f"redis://127.0.0.1:{port}"
        finally:
            _stop(process, signal.SIGTERM)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_sql(url: str, statement: str, **params: object) -> list[tuple[Any, ...]]:
    """`statement` (named `:params`) on the database of `url`, committed; its rows. For
    sync tests (it runs its own event loop)."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[tuple[Any, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())
