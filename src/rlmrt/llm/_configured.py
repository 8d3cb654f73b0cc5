"""What every HTTP model client takes from the settings, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from rlmrt.config import DEFAULT_MAX_REPLY_CHARS
from rlmrt.llm._retry import RetryPolicy
from rlmrt.llm.base import ModelClient

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

C = TypeVar("C", bound="ConfiguredClient")


class ConfiguredClient(ModelClient):
    """A `ModelClient` with a server, a key, a per-attempt timeout, sampling settings
    and a retry policy. `api_key` overrides the provider's environment variable.
    `max_reply_chars` cuts a longer reply (`ModelReply.cut_at`)."""

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
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
    ) -> None:
        super().__init__(model=model)
        self.api_base = api_base
        self.api_key = api_key
        self.request_timeout_s = request_timeout_s
        self.temperature = temperature
        self.seed = seed
        self.retry = retry or RetryPolicy()
        self.max_reply_chars = max_reply_chars

    @classmethod
    def from_config(cls: type[C], config: RLMConfig, *, retry: RetryPolicy | None = None) -> C:
        """A client for `config.llm.model` with the config's server, key, timeout and retries."""
        return cls(**cls.config_arguments(config, retry=retry))

    @classmethod
    def config_arguments(
        cls, config: RLMConfig, *, retry: RetryPolicy | None = None
    ) -> dict[str, Any]:
        """The constructor arguments `from_config` passes; subclasses add their own."""
        from rlmrt.llm import require_model

        return {
            "model": require_model(config),
            "api_base": config.llm.api_base,
            "api_key": config.api_key_value(),
            "request_timeout_s": config.llm.request_timeout_s,
            "temperature": config.llm.temperature,
            "seed": config.llm.seed,
            "retry": retry or RetryPolicy(max_retries=config.llm.max_retries),
            "max_reply_chars": config.llm.max_reply_chars,
        }
