"""`OpenAICompatibleClient`: the fast path for OpenAI-compatible servers.

Built on the OpenAI SDK (`AsyncOpenAI`) with one shared httpx connection pool sized
for many concurrent calls. It costs about a third of LiteLLM's CPU time per call
(see `bench/`), which matters for runs with many sub-calls. Retries and error
mapping are the same as `LiteLLMClient`'s (`rlmrt.llm._retry`).

Model ids: ``"openai/<name>"`` or a bare ``"<name>"``; the server receives
``<name>``. Any other id is sent unchanged (the server may be a proxy that
understands it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import openai

from rlmrt.errors import ModelAuthError
from rlmrt.llm._chat import collect_stream, reply_from_completion
from rlmrt.llm._retry import RetryPolicy, Target, with_retries
from rlmrt.llm.base import DeltaCallback, Message, ModelClient, ModelReply

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

DEFAULT_API_BASE = "https://api.openai.com/v1"


def wire_model_name(model: str) -> str:
    """The name the server gets: ``"openai/gpt-4o-mini"`` -> ``"gpt-4o-mini"``."""
    return model.removeprefix("openai/")


class OpenAICompatibleClient(ModelClient):
    """A model client for any server speaking the OpenAI chat-completions API.

    `api_key` defaults to OPENAI_API_KEY; a server that needs no key still needs a
    non-empty value (the SDK sends it as a bearer token). `max_connections` bounds
    the connection pool shared by concurrent calls.

    The pool belongs to the event loop of the first call. To use the client from
    another loop, `await aclose()` on the first one (the client then opens a new
    pool); otherwise the old pool's sockets cannot be closed cleanly.
    """

    def __init__(
        self,
        *,
        model: str,
        api_base: str | None = None,
        api_key: str | None = None,
        request_timeout_s: float = 120.0,
        temperature: float | None = None,
        seed: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 128,
    ) -> None:
        super().__init__(model=model)
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.api_key = api_key
        self.request_timeout_s = request_timeout_s
        self.temperature = temperature
        self.seed = seed
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_config(
        cls, config: RLMConfig, *, retry: RetryPolicy | None = None
    ) -> OpenAICompatibleClient:
        """A client for `config.model` with the config's server, key, timeout and retries."""
        from rlmrt.llm import require_model

        return cls(
            model=require_model(config),
            api_base=config.api_base,
            api_key=config.api_key_value(),
            request_timeout_s=config.request_timeout_s,
            temperature=config.temperature,
            seed=config.seed,
            retry=retry or RetryPolicy(max_retries=config.max_retries),
            max_connections=max(64, config.max_concurrency),
        )

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> ModelReply:
        name = model or self.model
        client = self._sdk_client()
        target = Target(
            model=name,
            where=f"the model server at {self.api_base}",
            key_hint=_KEY_HINT,
            timeout_s=self.request_timeout_s,
        )
        kwargs: dict[str, Any] = {"model": wire_model_name(name), "messages": list(messages)}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.seed is not None:
            kwargs["seed"] = self.seed

        async def call() -> ModelReply:
            if on_delta is None:
                return reply_from_completion(await client.chat.completions.create(**kwargs), name)
            stream = await client.chat.completions.create(
                **kwargs, stream=True, stream_options={"include_usage": True}
            )
            return await collect_stream(
                stream, model=name, on_delta=on_delta, where=target.where, close=stream.close
            )

        return await with_retries(call, policy=self.retry, target=target)

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.close()

    def _sdk_client(self) -> openai.AsyncOpenAI:
        # Connections belong to the event loop that opened them: a call from another
        # loop gets a new pool rather than failing on the old loop's sockets.
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is loop:
            return self._client
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ModelAuthError(f"no API key for the model server at {self.api_base}. {_KEY_HINT}")
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.api_base,
            max_retries=0,  # ours apply
            timeout=self.request_timeout_s,
            http_client=httpx.AsyncClient(limits=limits, timeout=self.request_timeout_s),
        )
        self._loop = loop
        return self._client


_KEY_HINT = (
    "Set OPENAI_API_KEY (or RLM_API_KEY), or pass api_key=... "
    "(any non-empty value works for a server that needs no key)"
)
