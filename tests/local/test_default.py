"""When runs use the local model, and what they say when it is not ready."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from rlmrt import RLM
from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError
from rlmrt.llm.base import Message
from rlmrt.llm.structured import json_schema_format
from rlmrt.local import server as local_server
from rlmrt.local.catalog import LocalModel
from rlmrt.local.default import local_default_reason, use_local_model
from rlmrt.local.server import ServerInfo


def test_a_configured_model_or_any_key_means_no_local_model() -> None:
    bare = RLMConfig()
    assert local_default_reason(bare, env={}) == (
        "no model configured and no provider API key in the environment"
    )
    assert local_default_reason(RLMConfig(model="openai/gpt-4o"), env={}) is None
    assert local_default_reason(bare, env={"ANTHROPIC_API_KEY": "sk"}) is None
    assert local_default_reason(bare, env={"ANTHROPIC_API_KEY": ""}) is not None
    assert local_default_reason(RLMConfig(api_key="k"), env={}) is None


def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlmrt.llm.provider_keys import PROVIDER_KEYS

    for names in PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RLM_LLM__MODEL", raising=False)


def test_rlm_without_a_model_asks_for_the_local_model_pieces(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _no_keys(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no rlm.toml
    monkeypatch.setattr(local_server, "llama_server_installed", lambda: True)
    with pytest.raises(
        ConfigError, match=r"not downloaded: run `rlm model pull qwen2.5-coder-1.5b`"
    ):
        RLM()
    monkeypatch.setattr(local_server, "llama_server_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'rlmrt\[local\]'"):
        RLM()


async def test_the_first_call_starts_the_server_once_off_the_event_loop(serve, monkeypatch) -> None:
    """Two concurrent first calls: one server start, in a worker thread, while the loop
    keeps running (the llama.cpp server is stood in for by the scripted one)."""
    server = serve(lambda request: f"echo {request.last_user_text}")
    started: list[str] = []

    def slow_start(model: LocalModel) -> ServerInfo:
        started.append(model.name)
        time.sleep(0.3)  # loading a model takes seconds
        return ServerInfo(pid=0, port=server.port, model=model.name)

    monkeypatch.setattr(local_server, "ensure_server", slow_start)
    monkeypatch.setattr(local_server, "check_servable", lambda model: None)  # no file here
    config, client = use_local_model(RLMConfig(max_retries=0))
    assert config.llm.model == client.model == "openai/qwen2.5-coder-1.5b" and not started
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    try:
        replies = await asyncio.gather(
            client.complete([{"role": "user", "content": "one"}]),
            client.complete([{"role": "user", "content": "two"}]),
        )
    finally:
        ticker.cancel()
        await client.aclose()
    assert [r.text for r in replies] == ["echo one", "echo two"]
    assert started == ["qwen2.5-coder-1.5b"]
    assert ticks >= 10  # the loop ran while the server started


async def test_a_schema_is_asked_in_the_form_the_llama_cpp_server_takes(serve, monkeypatch) -> None:
    """llama-cpp-python's server (0.3) refuses OpenAI's "json_schema" type with a 422;
    it takes the schema beside "json_object" and turns it into a grammar."""
    server = serve(lambda request: '{"n": 1}')
    monkeypatch.setattr(
        local_server, "ensure_server", lambda m: ServerInfo(pid=0, port=server.port, model=m.name)
    )
    monkeypatch.setattr(local_server, "check_servable", lambda model: None)
    _, client = use_local_model(RLMConfig(max_retries=0))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    try:
        message: list[Message] = [{"role": "user", "content": "n?"}]
        await client.complete(message, response_format=json_schema_format(schema, "N"))
        await client.complete(message)
    finally:
        await client.aclose()
    typed, plain = server.requests
    assert typed.body["response_format"] == {"type": "json_object", "schema": schema}
    assert "response_format" not in plain.body


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_started_server_that_died_on_its_own_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server this process started and that crashed (llama.cpp's AMX build once died
    on its first request) was left a zombie: its pid no longer looked like a server,
    so nothing waited for it."""
    import subprocess
    import sys

    monkeypatch.setenv("RLMRT_MODELS_DIR", str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    monkeypatch.setitem(local_server._STARTED, proc.pid, proc)
    deadline = time.monotonic() + 10
    while _state(proc.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(proc.pid) == "Z"  # ended, not yet collected
    assert local_server.running_server() is None
    assert _state(proc.pid) is None  # collected
    assert proc.pid not in local_server._STARTED
