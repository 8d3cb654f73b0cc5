"""LiteLLMClient against the scripted server (provider "openai/" with an api_base)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from client_contract import MESSAGES, MakeClient, ModelClientContract, fast_retry

from rlmrt.errors import ModelAuthError, ModelNotFoundError
from rlmrt.llm import LiteLLMClient, ModelClient
from rlmrt.testing import ScriptedOpenAIServer

# LiteLLM 1.106's stream handler reads `model_fields` on instances, which pydantic
# 2.11+ deprecates; nothing rlmrt can change (users see no DeprecationWarning by default).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated"
    ":DeprecationWarning:litellm"
)


@pytest.fixture
def make_client() -> MakeClient:
    def make(api_base: str, *, model: str = "openai/m", **kw: Any) -> ModelClient:
        kw.setdefault("retry", fast_retry())
        kw.setdefault("request_timeout_s", 5.0)
        kw.setdefault("api_key", "test-key")
        return LiteLLMClient(model=model, api_base=api_base, **kw)

    return make


class TestLiteLLMContract(ModelClientContract):
    pass


async def test_model_without_provider(
    server: ScriptedOpenAIServer, capfd: pytest.CaptureFixture[str]
) -> None:
    client = LiteLLMClient(model="no-such-provider-model-xyz", api_base=server.url, api_key="k")
    with pytest.raises(ModelNotFoundError) as caught:
        await client.complete(MESSAGES)
    assert "use 'provider/model', e.g. 'openai/gpt-4o-mini'" in str(caught.value)
    assert server.requests == []
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # no "Provider List" / "Give Feedback" prints


async def test_missing_openai_key(
    server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = LiteLLMClient(model="openai/m", api_base=server.url, retry=fast_retry(3))
    with pytest.raises(ModelAuthError) as caught:
        await client.complete(MESSAGES)
    assert "Set OPENAI_API_KEY (or RLM_LLM__API_KEY), or pass api_key=" in str(caught.value)
    assert server.requests == []
    assert capfd.readouterr() == ("", "")


async def test_missing_provider_key_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    client = LiteLLMClient(model="anthropic/claude-sonnet-4-5", retry=fast_retry(0))
    with pytest.raises(ModelAuthError, match="Set ANTHROPIC_API_KEY") as caught:
        await client.complete(MESSAGES)
    assert "provider 'anthropic'" in str(caught.value)


def test_litellm_import_is_offline_and_quiet() -> None:
    # A fresh interpreter: record every socket the import (and a price lookup) opens.
    code = """
import os, sys
os.environ.pop("LITELLM_LOCAL_MODEL_COST_MAP", None)
events = []
def audit(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        events.append((event, args))
sys.addaudithook(audit)
import rlmrt.llm
assert "litellm" not in sys.modules
from rlmrt.llm._litellm import import_litellm
litellm = import_litellm()
assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
assert litellm.suppress_debug_info is True
assert litellm.model_cost["gpt-4o-mini"]["input_cost_per_token"] > 0
from rlmrt.llm.pricing import cost_usd
assert cost_usd("openai/gpt-4o-mini", 1000, 1000, {})[1]
assert events == [], events
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert result.stderr == ""
