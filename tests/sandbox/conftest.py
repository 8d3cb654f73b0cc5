"""Fixtures of the sandbox suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from remote_helpers import HostProcess, start_host


@pytest.fixture(scope="session")
def remote_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One sandbox host (process kind, the default limits as its maxima) for every test
    of the "remote" kind."""
    host = start_host(tmp_path_factory.mktemp("sandbox-host"))
    try:
        yield host
    finally:
        host.stop()
