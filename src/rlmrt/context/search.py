"""`context_search()` for sandboxed code: the configured provider, opened on first use.

One `ContextSearch` belongs to one `RLM` (every run of its tree shares it) or to one
MCP server project. Sandboxed code can forge its arguments, so they are checked here,
on the host, whatever the sandbox already checked.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rlmrt.context.base import PROVIDERS, ContextHit, ContextProvider
from rlmrt.errors import ConfigError

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

MAX_SEARCH_TOKENS = 200_000
NOT_CONFIGURED = (
    "context_search is not available: no context provider is configured "
    '(set provider = "local" or "snipara" under [context] in rlm.toml, or RLM_CONTEXT__PROVIDER)'
)


def open_provider(config: RLMConfig) -> ContextProvider:
    """A new provider of the kind `config.context.provider` names."""
    name = config.context.provider
    if name is None:
        raise ConfigError(NOT_CONFIGURED)
    return PROVIDERS.load(name).from_config(config)


def hit_dict(hit: ContextHit) -> dict[str, Any]:
    """A hit as the plain dict sandboxed code and MCP clients get."""
    return asdict(hit)


def check_search_args(query: Any, max_tokens: Any) -> tuple[str, int]:
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("context_search: query must be a non-empty string")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise ConfigError(
            f"context_search: max_tokens must be an int, got {type(max_tokens).__name__}"
        )
    if not 1 <= max_tokens <= MAX_SEARCH_TOKENS:
        raise ConfigError(
            f"context_search: max_tokens must be between 1 and {MAX_SEARCH_TOKENS:,},"
            f" got {max_tokens}"
        )
    return query, max_tokens


class ContextSearch:
    """The provider `config` names, opened (and, for the local index, refreshed once)
    on the first search; `enabled` is False when no provider is configured."""

    def __init__(self, config: RLMConfig) -> None:
        self.config = config
        self._provider: ContextProvider | None = None
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.config.context.provider is not None

    async def provider(self) -> ContextProvider:
        async with self._lock:
            if self._provider is None:
                provider = open_provider(self.config)
                if provider.refreshable:
                    # picks up the files changed since the index was last built
                    try:
                        await asyncio.to_thread(provider.refresh)
                    except BaseException:
                        await provider.aclose()
                        raise
                self._provider = provider
            return self._provider

    async def search(self, query: Any, max_tokens: Any = 2000) -> list[dict[str, Any]]:
        """The best hits for `query` within `max_tokens`, as plain dicts, best first."""
        if not self.enabled:
            raise ConfigError(NOT_CONFIGURED)
        text, budget = check_search_args(query, max_tokens)
        provider = await self.provider()
        return [hit_dict(hit) for hit in await provider.search(text, max_tokens=budget)]

    async def aclose(self) -> None:
        provider, self._provider = self._provider, None
        if provider is not None:
            await provider.aclose()
