"""When a run uses the local model, and the client that talks to it.

A configured model always wins. With none configured and no provider API key in the
environment (nothing else could work), runs use the default local model: its server
is started (or reused) at the first model call, and the run talks to it on 127.0.0.1
over the OpenAI API. Building an `RLM` starts nothing (it only checks that the server
package and the model file are there).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rlmrt.config import RLMConfig, config_with
from rlmrt.llm.base import ChatMessage, DeltaCallback, ModelClient, ModelReply
from rlmrt.llm.provider_keys import keys_present
from rlmrt.llm.structured import llama_cpp_format
from rlmrt.local.catalog import LocalModel, get_model

__all__ = ["LocalModelClient", "local_default_reason", "use_local_model"]

log = logging.getLogger("rlmrt")


def local_default_reason(config: RLMConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Why a run with `config` uses the local model; None when it does not."""
    if config.llm.model or config.llm.api_key is not None or keys_present(env):
        return None
    return "no model configured and no provider API key in the environment"


def use_local_model(
    config: RLMConfig, model: LocalModel | None = None
) -> tuple[RLMConfig, LocalModelClient]:
    """`config` pointed at the local model, and the client that starts its server (or
    reuses a running one) at its first call. Nothing is started here; a missing piece
    (the server package, the model file) is a ConfigError now, not at the first call."""
    from rlmrt.local.server import check_servable

    model = model or get_model(None)
    check_servable(model)
    settings = config_with(
        config,
        model=f"openai/{model.name}",
        api_key="local",  # the server asks for none; the client wants one to send
        context_window_tokens=config.prompt.context_window_tokens or model.context_tokens,
        # a small model is steadier at temperature 0 (the engine breaks its loops)
        temperature=0.0 if config.llm.temperature is None else config.llm.temperature,
        seed=0 if config.llm.seed is None else config.llm.seed,
    )
    return settings, LocalModelClient(settings, model)


class LocalModelClient(ModelClient):
    """The local model's client: the first call starts (or finds) the server, in a
    worker thread so the event loop keeps running while it loads, then every call goes
    to an OpenAI-compatible client on its address."""

    def __init__(self, config: RLMConfig, model: LocalModel) -> None:
        super().__init__(model=f"openai/{model.name}")
        self._config = config
        self._local = model
        self._client: ModelClient | None = None
        # a thread lock, not an asyncio one: the client may serve more than one loop
        self._starting = threading.Lock()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        on_delta: DeltaCallback | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelReply:
        client = self._client
        if client is None:
            client = await asyncio.to_thread(self._connect)
        options: dict[str, Any] = {} if seed is None else {"seed": seed}
        if response_format is not None:
            options["response_format"] = llama_cpp_format(response_format)
        return await client.complete(
            messages,
            model=model,
            on_delta=on_delta,
            temperature=temperature,
            max_tokens=max_tokens,
            **options,
        )

    def _connect(self) -> ModelClient:
        with self._starting:
            if self._client is None:
                from rlmrt.llm import create_client
                from rlmrt.local.server import ensure_server

                info = ensure_server(self._local)
                log.info("using the local model %s at %s", self._local.name, info.base_url)
                self._client = create_client(config_with(self._config, api_base=info.base_url))
            return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
