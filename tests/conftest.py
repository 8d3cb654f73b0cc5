"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

if TYPE_CHECKING:
    from rlmrt import RLM


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's rlm.toml or writes to ~/.rlmrt."""
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "rlmrt-home"))
    for name in list(__import__("os").environ):
        if name.startswith("RLM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


ServerFactory = Callable[..., ScriptedOpenAIServer]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start scripted servers on 127.0.0.1; all are stopped at the end of the test."""
    started: list[ScriptedOpenAIServer] = []

    def factory(
        handler: Callable[[ChatRequest], Reply | str], **kwargs: Any
    ) -> ScriptedOpenAIServer:
        server = ScriptedOpenAIServer(handler, **kwargs)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def make_rlm(tmp_path: Path) -> Iterator[Callable[..., RLM]]:
    """An RLM pointed at a scripted server, writing trajectories under tmp_path."""
    made: list[RLM] = []

    from rlmrt import RLM

    def factory(server: ScriptedOpenAIServer, **settings: Any) -> RLM:
        settings.setdefault("trajectory_dir", tmp_path / "runs")
        settings.setdefault("max_retries", 0)
        rlm = RLM(model="openai/test-model", api_base=server.url, api_key="sk-test", **settings)
        made.append(rlm)
        return rlm

    yield factory
    for rlm in made:
        rlm.close()


# Exceptions chained deeper than this are cut before pytest formats a failure.
_MAX_CHAIN = 30


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report a failure whose exception is chained hundreds deep (a recursion bomb's
    finally blocks chain one error per frame) as a failure, not as pytest's own
    INTERNALERROR: formatting the chain recursively overflows the stack, and the run
    would end there with no word on which test failed."""
    if call.excinfo is not None:
        _cut_chain(call.excinfo.value)
    yield


def _cut_chain(exc: BaseException, seen: set[int] | None = None) -> None:
    """Cut `exc`'s chain (and those of the exceptions of a group) after _MAX_CHAIN links."""
    seen = set() if seen is None else seen
    current: BaseException | None = exc
    depth = 0
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for member in getattr(current, "exceptions", ()):  # an exception group
            _cut_chain(member, seen)
        depth += 1
        following = current.__cause__ or current.__context__
        if depth >= _MAX_CHAIN:
            current.__cause__ = current.__context__ = None
            return
        current = following
