"""`LiteLLMClient`: any provider LiteLLM supports, behind the `ModelClient` protocol.

Model ids are LiteLLM's: "provider/model" (``"openai/gpt-4o-mini"``,
``"anthropic/claude-sonnet-4-5"``, ``"ollama/llama3"``). LiteLLM is imported on the
first call, with its bundled price map (no network at import). LiteLLM's own
retries are turned off; ours (`rlmrt.llm._retry`) apply, with the same error
mapping as the OpenAI-compatible client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.llm._chat import collect_stream, cut_reply, reply_from_completion
from rlmrt.llm._configured import ConfiguredClient
from rlmrt.llm._litellm import import_litellm
from rlmrt.llm._retry import Target, library_errors, with_retries
from rlmrt.llm.base import ChatMessage, DeltaCallback, ModelReply

if TYPE_CHECKING:
    pass


class LiteLLMClient(ConfiguredClient):
    """A model client on `litellm.acompletion`.

    `api_base` sends every call to that server; `api_key` overrides the provider's
    environment variable (e.g. OPENAI_API_KEY). `request_timeout_s` applies to each
    attempt; `retry` sets how transient failures are retried.
    """

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
        name = model or self.model
        litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": name,
            "messages": list(messages),
            "timeout": self.request_timeout_s,
            "max_retries": 0,  # ours, not LiteLLM's nor the OpenAI SDK's
        }
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        temperature = self.temperature if temperature is None else temperature
        if temperature is not None:
            kwargs["temperature"] = temperature
        seed = self.seed if seed is None else seed
        if seed is not None:
            kwargs["seed"] = seed
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if response_format is not None:
            kwargs["response_format"] = response_format
        limit = self.max_reply_chars
        target = self._target(name)

        async def call() -> ModelReply:
            if on_delta is None:
                # LiteLLM has read the whole body by now: only the stream stops early
                reply = reply_from_completion(await litellm.acompletion(**kwargs), name)
                return cut_reply(reply, limit)
            stream = await litellm.acompletion(
                **kwargs, stream=True, stream_options={"include_usage": True}
            )
            return await collect_stream(
                stream,
                model=name,
                on_delta=on_delta,
                where=target.where,
                close=stream.aclose,
                limit=limit,
            )

        return await with_retries(call, policy=self.retry, target=target)

    def _target(self, name: str) -> Target:
        provider, sep, _ = name.partition("/")
        if self.api_base is not None:
            where = f"the model server at {self.api_base}"
        elif sep:
            where = f"provider {provider!r}"
        else:
            where = "the provider LiteLLM chose"

        def key_hint() -> str:
            names: list[str] = []
            try:
                names = list(import_litellm().validate_environment(model=name)["missing_keys"])
            except library_errors():  # unknown provider: no variable to name
                names = []
            env = (
                " or ".join(names)
                if names
                else f"{(provider if sep else 'OPENAI').upper()}_API_KEY"
            )
            return f"Set {env} (or RLM_LLM__API_KEY), or pass api_key=..."

        return Target(model=name, where=where, key_hint=key_hint, timeout_s=self.request_timeout_s)
