"""`rlm setup server`: the daemons `rlm serve` scales out with, from Debian: PostgreSQL
(`[server] database_url = "postgresql+asyncpg://..."`, shared by replicas) and Redis
(`[server] rate_limit_storage = "redis://..."`, their shared rate-limit counters).

The packages' own services are not used here (the server tests start their own on
127.0.0.1; production runs them as it sees fit), so they are stopped when apt started
them. `postgres_binary` finds PostgreSQL's programs, which Debian keeps off PATH.
"""

from __future__ import annotations

from pathlib import Path

from rlmrt.setup._host import (
    Host,
    Outcome,
    Reporter,
    apt_install,
    run_quiet,
    stop_services,
    system_binary,
)

STEP = "server"
PACKAGES = ("postgresql", "redis-server")
SERVICES = ("postgresql", "redis-server")
POSTGRES_ROOT = Path("/usr/lib/postgresql")  # Debian: one folder per major version


def postgres_binary(name: str) -> str | None:
    """PostgreSQL's `name` (initdb, postgres, pg_ctl) of the newest installed version,
    or on PATH (None: not installed)."""
    versions = sorted(
        (p for p in POSTGRES_ROOT.glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    for folder in versions:
        if (folder / name).is_file():
            return str(folder / name)
    return system_binary(name)


def redis_binary() -> str | None:
    return system_binary("redis-server")


def missing_daemons() -> list[str]:
    """The Debian packages whose programs are not there."""
    missing = []
    if postgres_binary("initdb") is None or postgres_binary("postgres") is None:
        missing.append("postgresql")
    if redis_binary() is None:
        missing.append("redis-server")
    return missing


def setup_server(host: Host, report: Reporter) -> Outcome:
    """Install PostgreSQL and Redis unless they are there."""
    missing = missing_daemons()
    if missing:
        needs = apt_install(host, report, STEP, missing)
        if needs is not None:
            return needs
        stop_services(SERVICES)  # the tests start their own on 127.0.0.1
    initdb = postgres_binary("initdb") or "initdb"
    redis = redis_binary() or "redis-server"
    postgres_version = run_quiet([initdb, "--version"]).strip()
    redis_version = run_quiet([redis, "--version"]).split(" sha=")[0].strip()
    detail = f"{postgres_version} ({Path(initdb).parent}); {redis_version}"
    return Outcome(STEP, "done" if missing else "ready", detail)
