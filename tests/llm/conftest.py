"""Fixtures for the model-client tests: a scripted server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from client_contract import ReplyQueue

from rlmrt.testing import ScriptedOpenAIServer


@pytest.fixture
def replies() -> ReplyQueue:
    return ReplyQueue()


@pytest.fixture
def server(replies: ReplyQueue) -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(replies) as running:
        yield running


@pytest.fixture
def dead_url() -> str:
    """The URL of a port nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
