"""The host side of sandboxed code's calls: sub-model queries, batches, context search.

Sandboxed code can forge any argument, so each call is checked here, on the host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.context.search import NOT_CONFIGURED
from rlmrt.errors import ConfigError, RLMError, SandboxError
from rlmrt.sandbox.base import QueryFailed

if TYPE_CHECKING:
    from rlmrt.engine.run import Run

__all__ = ["RunBridge"]


class RunBridge:
    """The HostBridge of one run: what its sandboxed code may ask of the host.

    A session's bridge is re-bound to each run in turn (`bind`)."""

    def __init__(self, run: Run | None) -> None:
        self._bound = run

    def bind(self, run: Run | None) -> None:
        self._bound = run

    @property
    def _run(self) -> Run:
        if self._bound is None:
            raise SandboxError("no run is in progress in this sandbox")
        return self._bound

    async def llm_query(self, prompt: str, model: str | None = None) -> str:
        return await self._run.sub_llm(_require_str(prompt, "llm_query"), model)

    async def rlm_query(self, prompt: str, context: Any = None) -> str:
        return await self._run.sub_rlm(_require_str(prompt, "rlm_query"), context)

    async def llm_query_batched(
        self, prompts: Sequence[str], model: str | None = None
    ) -> list[str | QueryFailed]:
        items = _require_list(prompts, "llm_query_batched")
        return await _gather([self.llm_query(p, model) for p in items])

    async def rlm_query_batched(
        self, prompts: Sequence[str], contexts: Sequence[Any] | None = None
    ) -> list[str | QueryFailed]:
        items = _require_list(prompts, "rlm_query_batched")
        if contexts is not None and len(contexts) != len(items):
            raise ValueError(
                f"rlm_query_batched got {len(items)} prompts but {len(contexts)} contexts"
            )
        ctx = list(contexts) if contexts is not None else [None] * len(items)
        return await _gather([self.rlm_query(p, c) for p, c in zip(items, ctx, strict=True)])

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        searcher = self._run.searcher
        if searcher is None:
            raise ConfigError(NOT_CONFIGURED)
        return await searcher.search(query, max_tokens)


async def _gather(calls: list[Any]) -> list[str | QueryFailed]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    out: list[str | QueryFailed] = []
    for item in results:
        if isinstance(item, BaseException):
            if not isinstance(item, (RLMError, ValueError, TypeError)):
                raise item
            out.append(QueryFailed(f"{type(item).__name__}: {item}"))
        else:
            out.append(item)
    return out


def _require_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} takes a str prompt, got {type(value).__name__}")
    return value


def _require_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{where} takes a list of str prompts, got {type(value).__name__}")
    return [_require_str(item, where) for item in value]
