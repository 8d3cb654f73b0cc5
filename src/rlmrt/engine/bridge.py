"""The host side of sandboxed code's calls: sub-model queries, batches, context search,
tools.

One method per entry of the sandbox's host-function table (`rlmrt.sandbox.kernel.
HOST_FUNCTIONS`). Sandboxed code can forge any argument, so every call is checked on
the host before it gets here, with the table's own checks (`rlmrt.sandbox.base.call_host`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rlmrt.context.search import NOT_CONFIGURED
from rlmrt.engine import memory_calls
from rlmrt.engine.output_type import OutputType
from rlmrt.engine.tool_calls import call_tool
from rlmrt.errors import ConfigError, RLMError, SandboxError
from rlmrt.llm.media import media_parts
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

    async def llm_query(
        self,
        prompt: str,
        model: str | None = None,
        images: Sequence[dict[str, str]] | None = None,
        audio: Sequence[dict[str, str]] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> Any:
        output = _output(output_type)
        return await self._run.sub_llm(
            prompt, model, media_parts(images or (), audio or ()), output
        )

    async def llm_query_batched(
        self,
        prompts: Sequence[str],
        model: str | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]:
        output = _output(output_type)
        return await _gather([self._run.sub_llm(p, model, (), output) for p in prompts])

    async def rlm_query(
        self, prompt: str, context: Any = None, *, output_type: dict[str, Any] | None = None
    ) -> Any:
        return await self._run.sub_rlm(prompt, context, _output(output_type))

    async def rlm_query_batched(
        self,
        prompts: Sequence[str],
        contexts: Sequence[Any] | None = None,
        *,
        output_type: dict[str, Any] | None = None,
    ) -> list[Any]:
        output = _output(output_type)
        ctx = list(contexts) if contexts is not None else [None] * len(prompts)
        return await _gather(
            [self._run.sub_rlm(p, c, output) for p, c in zip(prompts, ctx, strict=True)]
        )

    async def context_search(self, query: str, max_tokens: int = 2000) -> list[dict[str, Any]]:
        searcher = self._run.searcher
        if searcher is None:
            raise ConfigError(NOT_CONFIGURED)
        return await searcher.search(query, max_tokens)

    async def tool_call(
        self, tool: str, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> Any:
        return await call_tool(self._run, tool, args or (), kwargs or {})

    async def tool_batch(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        run = self._run
        return await _gather([call_tool(run, name, (), arguments) for name, arguments in calls])

    async def memory_remember(
        self, text: str, tags: Sequence[str] | None = None, pin: bool = False
    ) -> str:
        return await memory_calls.remember(self._run, text, tags or (), pin)

    async def memory_recall(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        return await memory_calls.recall(self._run, query, k)

    async def memory_forget(self, item_id: str) -> bool:
        return await memory_calls.forget(self._run, item_id)


def _output(schema: dict[str, Any] | None) -> OutputType | None:
    """A sub-call's output type: the kernel sends every type as its JSON Schema."""
    return None if schema is None else OutputType.of(schema)


async def _gather(calls: list[Any]) -> list[Any]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    out: list[Any] = []
    for item in results:
        if isinstance(item, BaseException):
            if not isinstance(item, (RLMError, ValueError, TypeError)):
                raise item
            out.append(QueryFailed(f"{type(item).__name__}: {item}"))
        else:
            out.append(item)
    return out
