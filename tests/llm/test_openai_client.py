"""OpenAICompatibleClient against the scripted server, and the client factory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from client_contract import MESSAGES, MakeClient, ModelClientContract, fast_retry

from rlmrt.config import RLMConfig
from rlmrt.errors import ConfigError, ModelAuthError
from rlmrt.llm import (
    CLIENTS,
    LiteLLMClient,
    ModelClient,
    OpenAICompatibleClient,
    client_kind,
    create_client,
    uses_openai_fast_path,
)
from rlmrt.llm.openai_client import wire_model_name
from rlmrt.testing import ScriptedOpenAIServer


@pytest.fixture
def make_client() -> MakeClient:
    def make(api_base: str, *, model: str = "openai/m", **kw: Any) -> ModelClient:
        kw.setdefault("retry", fast_retry())
        kw.setdefault("request_timeout_s", 5.0)
        kw.setdefault("api_key", "test-key")
        return OpenAICompatibleClient(model=model, api_base=api_base, **kw)

    return make


class TestOpenAIContract(ModelClientContract):
    pass


async def test_missing_key_names_the_variable(
    server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = OpenAICompatibleClient(model="m", api_base=server.url)
    with pytest.raises(ModelAuthError) as caught:
        await client.complete(MESSAGES)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "api_key=" in str(caught.value)
    assert server.url in str(caught.value)
    assert server.requests == []


async def test_key_from_environment(
    server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    async with OpenAICompatibleClient(model="m", api_base=server.url) as client:
        await client.complete(MESSAGES)
    assert server.requests[0].headers["authorization"] == "Bearer env-key"


def test_reusable_after_aclose_from_another_loop(server: ScriptedOpenAIServer) -> None:
    client = OpenAICompatibleClient(model="m", api_base=server.url, api_key="k")

    async def once() -> str:
        text = (await client.complete(MESSAGES)).text
        await client.aclose()
        await client.aclose()  # idempotent
        return text

    assert asyncio.run(once()) == "hello world from the server"
    assert asyncio.run(once()) == "hello world from the server"
    assert len(server.requests) == 2


def test_wire_model_name() -> None:
    assert wire_model_name("openai/gpt-4o-mini") == "gpt-4o-mini"
    assert wire_model_name("gpt-4o-mini") == "gpt-4o-mini"
    assert wire_model_name("openai/org/model") == "org/model"


@pytest.mark.parametrize(
    ("model", "api_base", "fast"),
    [
        ("openai/gpt-4o-mini", "http://127.0.0.1:1/v1", True),
        ("my-local-model", "http://127.0.0.1:1/v1", True),
        ("openai/gpt-4o-mini", None, False),
        ("gpt-4o-mini", None, False),
        ("anthropic/claude-sonnet-4-5", "http://127.0.0.1:1/v1", False),
        ("hosted_vllm/llama", "http://127.0.0.1:1/v1", False),
    ],
)
def test_factory_rule(model: str, api_base: str | None, fast: bool) -> None:
    config = RLMConfig(model=model, api_base=api_base, api_key="k", max_retries=5)
    client = create_client(config)
    assert uses_openai_fast_path(model, api_base) is fast
    assert isinstance(client, OpenAICompatibleClient if fast else LiteLLMClient)
    assert type(client) is CLIENTS.load(client_kind(model, api_base))
    assert client.model == model
    assert client.retry.max_retries == 5


def test_factory_copies_the_config() -> None:
    config = RLMConfig(
        model="openai/m",
        api_base="http://127.0.0.1:1/v1/",
        api_key="secret",
        request_timeout_s=7,
        temperature=0.5,
        seed=3,
        max_concurrency=256,
    )
    client = create_client(config)
    assert isinstance(client, OpenAICompatibleClient)
    assert client.api_base == "http://127.0.0.1:1/v1"
    assert client.api_key == "secret"
    assert (client.request_timeout_s, client.temperature, client.seed) == (7, 0.5, 3)
    assert client.max_connections == 256


def test_factory_without_model() -> None:
    with pytest.raises(ConfigError, match="no model configured"):
        create_client(RLMConfig())


def test_importing_rlmrt_llm_loads_no_client_library() -> None:
    code = (
        "import sys, rlmrt.llm, rlmrt.testing\n"
        "heavy = [m for m in ('litellm', 'openai', 'httpx') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_prompts_with_lone_surrogates_are_still_sent(server: ScriptedOpenAIServer) -> None:
    """orjson refuses lone surrogates; the body falls back to escaped JSON."""
    async with OpenAICompatibleClient(model="m", api_base=server.url, api_key="k") as client:
        await client.complete([{"role": "user", "content": "bad \udc80 byte"}])
    assert server.requests[0].last_user_text == "bad \udc80 byte"
