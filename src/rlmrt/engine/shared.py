"""A sandbox that outlives the runs using it (a session's), and its host bridge.

The session starts it, loads its contexts and closes it; each run of the session binds
the bridge to itself while it runs, so sub-calls made by code go to the run in
progress. Between runs, code run directly may still search the context; the model
functions raise a `UsageError` with the session's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.config import RLMConfig
from rlmrt.context.search import NOT_CONFIGURED, ContextSearch
from rlmrt.engine.bridge import RunBridge
from rlmrt.errors import ConfigError, UsageError
from rlmrt.sandbox.facade import create_backend

if TYPE_CHECKING:
    from rlmrt.engine.run import Run

__all__ = ["SessionHost", "SharedSandbox"]


class SessionHost:
    """The HostBridge of a session's sandbox: the bound run's bridge, else the
    session's own answers (see the module docs). `no_run` has a `{fn}` slot."""

    def __init__(self, searcher: ContextSearch | None, no_run: str) -> None:
        self._searcher = searcher
        self._no_run = no_run
        self._run: RunBridge | None = None

    def bind(self, run: Run | None) -> None:
        self._run = RunBridge(run) if run is not None else None

    def _refuse(self, fn: str) -> UsageError:
        return UsageError(self._no_run.format(fn=fn))

    async def llm_query(
        self,
        prompt: str,
        model: str | None = None,
        images: Sequence[dict[str, str]] | None = None,
        audio: Sequence[dict[str, str]] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> Any:
        if self._run is None:
            raise self._refuse("llm_query")
        return await self._run.llm_query(prompt, model, images, audio, output_type=output_type)

    async def llm_query_batched(
        self,
        prompts: Sequence[str],
        model: str | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]:
        if self._run is None:
            raise self._refuse("llm_query_batched")
        return await self._run.llm_query_batched(prompts, model, output_type=output_type)

    async def rlm_query(
        self, prompt: str, context: Any = None, *, output_type: dict[str, Any] | None = None
    ) -> Any:
        if self._run is None:
            raise self._refuse("rlm_query")
        return await self._run.rlm_query(prompt, context, output_type=output_type)

    async def rlm_query_batched(
        self,
        prompts: Sequence[str],
        contexts: Sequence[Any] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]:
        if self._run is None:
            raise self._refuse("rlm_query_batched")
        return await self._run.rlm_query_batched(prompts, contexts, output_type=output_type)

    async def tool_call(
        self, tool: str, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Any:
        if self._run is None:
            raise self._refuse("tools." + tool)
        return await self._run.tool_call(tool, args, kwargs)

    async def tool_batch(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        if self._run is None:
            raise self._refuse("tools.batch")
        return await self._run.tool_batch(calls)

    async def memory_remember(
        self, text: str, tags: Sequence[str] | None = None, pin: bool = False
    ) -> str:
        if self._run is None:
            raise self._refuse("memory.remember")
        return await self._run.memory_remember(text, tags, pin)

    async def memory_recall(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        if self._run is None:
            raise self._refuse("memory.recall")
        return await self._run.memory_recall(query, k)

    async def memory_forget(self, item_id: str) -> bool:
        if self._run is None:
            raise self._refuse("memory.forget")
        return await self._run.memory_forget(item_id)

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        if self._run is not None:
            return await self._run.context_search(query, max_tokens)
        if self._searcher is None:
            raise ConfigError(NOT_CONFIGURED)
        return await self._searcher.search(query, max_tokens)


class SharedSandbox:
    """A session's sandbox backend (not started) and the host bridge it was made with."""

    def __init__(self, config: RLMConfig, host: SessionHost) -> None:
        self.host = host
        self.backend = create_backend(
            config.sandbox.kind,
            limits=config.limits,
            bridge=host,
            options=config.sandbox.backend_options(),
        )
