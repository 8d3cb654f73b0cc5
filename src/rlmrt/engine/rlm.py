"""`RLM`: the public entry point. Every front (Python, CLI, servers) drives this.

Its runs start through `Engine.run` (engine/start.py), like every other run."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rlmrt._loop import LoopThread
from rlmrt.config import RLMConfig, config_with, load_config
from rlmrt.context.search import ContextSearch
from rlmrt.engine.context_input import load_context
from rlmrt.engine.learning import Distilled, distill_lessons
from rlmrt.engine.start import (
    DEFAULT_OUTPUT_RETRIES,
    Engine,
    RunResult,
    check_prompt,
    iterate_on,
    stream_run,
    typed_output,
)
from rlmrt.errors import RLMError
from rlmrt.events import Event, EventHandler
from rlmrt.llm.base import ModelClient
from rlmrt.local.default import local_default_reason, use_local_model
from rlmrt.memory import MemoryStore
from rlmrt.sandbox.pool import SandboxPool

if TYPE_CHECKING:
    from rlmrt.engine.session import RLMSession
    from rlmrt.tools import Tool

__all__ = ["RLM", "RunResult"]


class RLM:
    """A Recursive Language Model runtime.

    ```python
    with RLM(model="openai/gpt-4o-mini", sandbox="local", max_depth=2) as rlm:
        result = rlm.completion("How many invoices are overdue?", context=Path("ledger.txt"))
    ```

    Settings are the fields of `RLMConfig`, given as keyword arguments; they override
    `RLM_*` environment variables, which override `rlm.toml`. Pass `config=` to use a
    ready `RLMConfig` as is, and `client=` to use your own `ModelClient`. Close it
    (`with`, `async with`, `close()`, `aclose()`) to release its connections and
    sandboxes; one nobody closed releases its sync loop's at collection or exit.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        config: RLMConfig | None = None,
        client: ModelClient | None = None,
        **settings: Any,
    ) -> None:
        if config is not None:
            if settings or model is not None:
                config = config_with(config, model=model, **settings)
        else:
            config = load_config(model=model, **settings)
        if client is None and local_default_reason(config) is not None:
            config, client = use_local_model(config)
        self.config = config
        if client is None:
            from rlmrt.llm import create_client

            client = create_client(config)
        self.client = client
        self._searcher = ContextSearch(config)
        self._sync = LoopThread("rlmrt-rlm")
        self._sandboxes = SandboxPool(config.sandbox.pool)
        self.engine = Engine(
            client=client, config=config, sandboxes=self._sandboxes, searcher=self._searcher
        )
        # An RLM nobody closed releases what its sync calls opened on its loop (HTTP
        # sessions, sandboxes) when it is collected or at exit, without a warning.
        self._release = weakref.finalize(
            self, _release, self._sync, self._sandboxes, self._searcher, client
        )

    def subscribe(self, handler: EventHandler) -> None:
        """Call `handler` with every event of every later run."""
        self.engine.handlers.append(handler)

    # -- async core --------------------------------------------------------------
    async def acompletion(
        self,
        prompt: str,
        context: Any = None,
        *,
        on_event: EventHandler | None = None,
        output_type: object = None,
        output_retries: int = DEFAULT_OUTPUT_RETRIES,
        tools: Sequence[Tool] = (),
    ) -> RunResult:
        """Run `prompt` over `context` to its answer.

        `output_type` (a Pydantic model, dataclass, TypedDict, plain or generic type, or a
        JSON Schema dict) asks for a typed answer: the model is told the type, its FINAL
        value is validated on the host, a misfit goes back to it with the errors up to
        `output_retries` times, and `result.output` is the typed value. `tools` (made with
        `rlmrt.tools.tool`) are offered to the run's code as `tools.NAME(...)`, with the
        tools granted in the settings."""
        check_prompt(prompt)
        return await self.engine.run(
            prompt,
            load_context(context, self.config.input),
            on_event=on_event,
            output=typed_output(output_type, output_retries),
            tools=tools,
        )

    def astream(
        self,
        prompt: str,
        context: Any = None,
        *,
        output_type: object = None,
        output_retries: int = DEFAULT_OUTPUT_RETRIES,
        tools: Sequence[Tool] = (),
    ) -> AsyncGenerator[Event | RunResult, None]:
        """Yield the run's events as they happen (root-model token deltas included),
        then the `RunResult`."""

        def start(on_event: EventHandler) -> Awaitable[RunResult]:
            check_prompt(prompt)
            return self.engine.run(
                prompt,
                load_context(context, self.config.input),
                on_event=on_event,
                stream_root=True,
                output=typed_output(output_type, output_retries),
                tools=tools,
            )

        return stream_run(start)

    async def alearn(self, *, limit: int = 50) -> Distilled:
        """Write one lesson per run judged good or bad (`rlmrt.memory.give_feedback`,
        `rlm feedback`, scored batch runs) not learned from yet, with this RLM's model;
        later runs see the lessons most like their question (`[memory] learning`)."""
        with MemoryStore(self.config.memory.path) as store:
            return await distill_lessons(store, self.client, self.config, limit=limit)

    def learn(self, *, limit: int = 50) -> Distilled:
        """Synchronous form of `alearn`."""
        return self._sync.run(self.alearn(limit=limit))

    def session(self, context: Any = None) -> RLMSession:
        """A conversation of several completions over one persistent sandbox.

        `context` is loaded as `context`; later contexts as `context_1`, `context_2`...
        and earlier exchanges are in `history`. Use the session's sync methods or its
        async ones, not both: its sandbox lives on the event loop that first used it.
        """
        from rlmrt.engine.session import RLMSession

        return RLMSession(self.engine, context, loop=self._sync)

    async def awarm(self) -> int:
        """Start the pooled sandboxes now rather than at the first run; how many are ready.

        Only slow-starting sandbox kinds (docker, wasm, process, kubernetes) are pooled,
        up to the `sandbox_pool` setting.
        """
        sandbox = self.config.sandbox
        return await self._sandboxes.warm(
            sandbox.kind, self.config.limits, sandbox.backend_options()
        )

    async def aclose(self) -> None:
        """Close the sandboxes, the context search and the model client."""
        await _aclose(self._sandboxes, self._searcher, self.client)

    async def __aenter__(self) -> RLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.aclose()
        finally:
            self._release.detach()
            await asyncio.to_thread(self._sync.stop)

    # -- sync facade ----------------------------------------------------------------
    def completion(
        self,
        prompt: str,
        context: Any = None,
        *,
        output_type: object = None,
        output_retries: int = DEFAULT_OUTPUT_RETRIES,
        tools: Sequence[Tool] = (),
    ) -> RunResult:
        """Synchronous form of `acompletion`."""
        return self._sync.run(
            self.acompletion(
                prompt,
                context,
                output_type=output_type,
                output_retries=output_retries,
                tools=tools,
            )
        )

    def warm(self) -> int:
        """Synchronous form of `awarm`."""
        return self._sync.run(self.awarm())

    def stream(
        self,
        prompt: str,
        context: Any = None,
        *,
        output_type: object = None,
        output_retries: int = DEFAULT_OUTPUT_RETRIES,
        tools: Sequence[Tool] = (),
    ) -> Iterator[Event | RunResult]:
        """Synchronous form of `astream`: events as they happen, then the result."""
        return iterate_on(
            self._sync,
            self.astream(
                prompt,
                context,
                output_type=output_type,
                output_retries=output_retries,
                tools=tools,
            ),
        )

    def close(self) -> None:
        """Close the model client and stop the facade's loop."""
        self._release.detach()
        try:
            self._sync.run(self.aclose())
        finally:
            self._sync.stop()

    def __enter__(self) -> RLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _aclose(sandboxes: SandboxPool, searcher: ContextSearch, client: ModelClient) -> None:
    try:
        await sandboxes.aclose()
        await searcher.aclose()
    finally:
        await client.aclose()


def _release(
    sync: LoopThread, sandboxes: SandboxPool, searcher: ContextSearch, client: ModelClient
) -> None:
    """`RLM.close` for an RLM that was not closed: what its sync calls opened lives on
    its loop, closed there. (Async calls ran on the caller's loop: `async with RLM()`.)"""
    if not sync.started or sync.in_loop_thread:
        return
    try:
        sync.run(_aclose(sandboxes, searcher, client))
    except (RLMError, OSError, RuntimeError):  # at exit: nothing left to tell
        pass
    finally:
        sync.stop()
