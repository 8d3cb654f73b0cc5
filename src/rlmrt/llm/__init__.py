"""Model clients behind one async protocol, their registry, and the factory.

`CLIENTS` names each client class; `create_client(config)` picks the entry by this
rule (`client_kind`) and builds it with the class's `from_config`:

* ``"openai"``: ``api_base`` is set and the model id is ``"openai/<name>"`` or a bare
  ``"<name>"`` (no ``/``): `OpenAICompatibleClient`, the OpenAI SDK on a shared
  connection pool. The server receives ``<name>``. This is the fast path for vLLM,
  llama.cpp, a LiteLLM proxy, the scripted test server, or OpenAI itself.
* ``"litellm"``: anything else: `LiteLLMClient`, with LiteLLM's ``"provider/model"``
  ids (``"anthropic/claude-sonnet-4-5"``, ``"ollama/llama3"``; with ``api_base`` too).

Clients are imported on first use: `import rlmrt.llm` loads neither LiteLLM nor the
OpenAI SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rlmrt._registry import LazyRegistry
from rlmrt.errors import ConfigError
from rlmrt.llm.base import DeltaCallback, Message, ModelClient, ModelReply, Role

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig
    from rlmrt.llm._configured import ConfiguredClient
    from rlmrt.llm._retry import RetryPolicy
    from rlmrt.llm.litellm_client import LiteLLMClient
    from rlmrt.llm.openai_client import OpenAICompatibleClient
    from rlmrt.llm.pricing import cost_usd

__all__ = [
    "CLIENTS",
    "DeltaCallback",
    "LiteLLMClient",
    "Message",
    "ModelClient",
    "ModelReply",
    "OpenAICompatibleClient",
    "RetryPolicy",
    "Role",
    "client_kind",
    "cost_usd",
    "create_client",
    "uses_openai_fast_path",
]

_LAZY = {
    "LiteLLMClient": "rlmrt.llm.litellm_client",
    "OpenAICompatibleClient": "rlmrt.llm.openai_client",
    "RetryPolicy": "rlmrt.llm._retry",
    "cost_usd": "rlmrt.llm.pricing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rlmrt.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def require_model(config: RLMConfig) -> str:
    """The configured model id, or a ConfigError saying how to set one."""
    if not config.llm.model:
        raise ConfigError(
            "no model configured: pass model=... (e.g. 'openai/gpt-4o-mini'), "
            "set RLM_LLM__MODEL, or add model = ... under [llm] in rlm.toml"
        )
    return config.llm.model


CLIENTS: LazyRegistry[ConfiguredClient] = LazyRegistry(
    "model client",
    {
        "openai": "rlmrt.llm.openai_client:OpenAICompatibleClient",
        "litellm": "rlmrt.llm.litellm_client:LiteLLMClient",
    },
)


def client_kind(model: str, api_base: str | None) -> str:
    """The `CLIENTS` entry that serves `model` (see the module docs for the rule)."""
    if api_base is not None and (model.startswith("openai/") or "/" not in model):
        return "openai"
    return "litellm"


def uses_openai_fast_path(model: str, api_base: str | None) -> bool:
    """True when `create_client` picks `OpenAICompatibleClient` (see the module docs)."""
    return client_kind(model, api_base) == "openai"


def create_client(config: RLMConfig) -> ModelClient:
    """The model client for `config`, built from the settings by its class."""
    model = require_model(config)
    return CLIENTS.load(client_kind(model, config.llm.api_base)).from_config(config)
