"""Fixtures of the sandbox suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kube_helpers import KubeCluster
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


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """This machine's Kubernetes cluster for the tests of the "kubernetes" kind: started
    by the first test that needs it (skipped where it cannot run), stopped at the end by
    the script when this session started it."""
    cluster = KubeCluster()
    try:
        yield cluster
    finally:
        cluster.stop_if_started_here()
