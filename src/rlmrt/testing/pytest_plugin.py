"""rlmrt's pytest plugin for tool authors (entry point `pytest11`: loaded by every
pytest run where rlmrt is installed, so it imports nothing heavy and its fixtures are
used only by the tests that name them).

Fixtures:

- `scripted_model`: start a scripted OpenAI-compatible model on 127.0.0.1 whose
  replies the test writes: ``server = scripted_model(["```repl\\n...\\n```"])``.
- `scripted_rlm`: an `RLM` on such a model, its trajectory kept under `tmp_path`:
  ``rlm = scripted_rlm(["```repl\\nFINAL(tools.add(1, 2))\\n```"], sandbox=kind)``.
- `rlm_sandbox_kind`: a test that takes it runs once per sandbox kind of
  ``--rlm-sandboxes`` (default ``local,process``; add ``docker``, ``wasm`` where they run).
- `rlm_sandbox`: a started `Sandbox` of that kind, closed after the test.

Functions (import them from `rlmrt.testing`): `tool_contract(tool, call=...)` and
`assert_tool_called(result, "sqlite", where=...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rlmrt import RLM
    from rlmrt.sandbox import Sandbox
    from rlmrt.testing import Handler, Reply, ScriptedOpenAIServer

__all__ = ["ScriptedRLMs", "rlm_sandbox", "rlm_sandbox_kind", "scripted_model", "scripted_rlm"]

DEFAULT_SANDBOXES = "local,process"
_OPTION = "--rlm-sandboxes"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("rlmrt").addoption(
        _OPTION,
        default=DEFAULT_SANDBOXES,
        help="Sandbox kinds the rlm_sandbox_kind fixture runs a test on (comma-separated:"
        f" local, process, docker, wasm; default {DEFAULT_SANDBOXES}).",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rlm_sandbox_kind" not in metafunc.fixturenames:
        return
    if any(
        "rlm_sandbox_kind" in marker.args[0]
        for marker in metafunc.definition.iter_markers("parametrize")
        if marker.args and isinstance(marker.args[0], str)
    ):
        return  # the test chose its kinds itself
    option = str(metafunc.config.getoption(_OPTION, default=None) or DEFAULT_SANDBOXES)
    kinds = [kind.strip() for kind in option.split(",") if kind.strip()]
    metafunc.parametrize("rlm_sandbox_kind", kinds, ids=kinds, scope="function")


@pytest.fixture
def rlm_sandbox_kind(request: pytest.FixtureRequest) -> str:
    """The sandbox kind this run of the test uses (parametrized: see the module)."""
    return str(request.param)


@pytest.fixture
def rlm_sandbox(rlm_sandbox_kind: str) -> Iterator[Sandbox]:
    """A started sandbox of `rlm_sandbox_kind`, closed after the test."""
    from rlmrt.sandbox import Sandbox

    with Sandbox(rlm_sandbox_kind) as sandbox:
        yield sandbox


ModelFactory = Callable[..., "ScriptedOpenAIServer"]


@pytest.fixture
def scripted_model() -> Iterator[ModelFactory]:
    """Start scripted models: ``scripted_model(root_replies, sub=...)`` or
    ``scripted_model(handler=fn)``; each is stopped after the test."""
    from rlmrt.testing import ScriptedOpenAIServer, scripted

    started: list[ScriptedOpenAIServer] = []

    def start(
        root: Sequence[Reply | str] = (),
        sub: Handler | Sequence[Reply | str] | Reply | str | None = None,
        *,
        handler: Handler | None = None,
    ) -> ScriptedOpenAIServer:
        server = ScriptedOpenAIServer(handler or scripted(root, sub))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class ScriptedRLMs:
    """What the `scripted_rlm` fixture is: call it for an `RLM` on a scripted model;
    `server` is the model of the last one made (for its `requests`)."""

    def __init__(self, start_model: ModelFactory, runs: Path) -> None:
        self._start_model = start_model
        self._runs = runs
        self.made: list[RLM] = []
        self.server: ScriptedOpenAIServer | None = None

    def __call__(
        self,
        root: Sequence[Reply | str] = (),
        sub: Handler | Sequence[Reply | str] | Reply | str | None = None,
        *,
        handler: Handler | None = None,
        **settings: Any,
    ) -> RLM:
        from rlmrt import RLM

        self.server = self._start_model(root, sub, handler=handler)
        settings.setdefault("sandbox", "local")
        settings.setdefault("trajectory_dir", self._runs)
        settings.setdefault("max_retries", 0)
        rlm = RLM(model="openai/scripted", api_base=self.server.url, api_key="sk-test", **settings)
        self.made.append(rlm)
        return rlm

    def close(self) -> None:
        for rlm in self.made:
            rlm.close()


@pytest.fixture
def scripted_rlm(scripted_model: ModelFactory, tmp_path: Path) -> Iterator[ScriptedRLMs]:
    """``scripted_rlm(root_replies, sub=..., sandbox="local", **settings)``: an `RLM`
    on a scripted model, its trajectories under `tmp_path`; closed after the test."""
    made = ScriptedRLMs(scripted_model, tmp_path / "runs")
    yield made
    made.close()
