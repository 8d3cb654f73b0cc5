"""`RLM`: the public entry point. Every front (Python, CLI, servers) drives this."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rlmrt._loop import LoopThread
from rlmrt.config import RLMConfig, config_with, load_config
from rlmrt.context.search import ContextSearch
from rlmrt.engine.context_input import LoadedContext, load_context
from rlmrt.engine.run import Run, SharedSandbox
from rlmrt.engine.tree import RunTree
from rlmrt.errors import ConfigError
from rlmrt.events import Event, EventBus, EventHandler
from rlmrt.llm.base import ModelClient
from rlmrt.local.default import local_default_reason, use_local_model
from rlmrt.observe.trajectory import SUFFIX, TrajectoryWriter
from rlmrt.observe.usage import Usage
from rlmrt.sandbox.pool import SandboxPool

if TYPE_CHECKING:
    from rlmrt.engine.session import RLMSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The outcome of a run.

    `answer` is the final answer as text (None only when a limit stopped the run and
    even the best-effort call failed). `partial` is True when a limit ended the run;
    `stop_reason` names it ("final" when the model answered). `usage` covers the whole
    run tree.
    """

    answer: str | None
    partial: bool
    stop_reason: str
    usage: Usage
    run_id: str
    trajectory_path: Path | None
    iterations: int


def new_run_id() -> str:
    """Sortable by time, unique enough for one user's runs."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(4)}"


class RLM:
    """A Recursive Language Model runtime.

    ```python
    rlm = RLM(model="openai/gpt-4o-mini", sandbox="local", max_depth=2)
    result = rlm.completion("How many invoices are overdue?", context=Path("ledger.txt"))
    ```

    Settings are the fields of `RLMConfig`, given as keyword arguments; they override
    `RLM_*` environment variables, which override `rlm.toml`. Pass `config=` to use a
    ready `RLMConfig` as is, and `client=` to use your own `ModelClient`.
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
            config = use_local_model(config)
        self.config = config
        if client is None:
            from rlmrt.llm import create_client

            client = create_client(config)
        self.client = client
        self._subscribers: list[EventHandler] = []
        self._searcher = ContextSearch(config)
        self._sync = LoopThread("rlmrt-rlm")
        self._sandboxes = SandboxPool(config.sandbox.pool)

    def subscribe(self, handler: EventHandler) -> None:
        """Call `handler` with every event of every later run."""
        self._subscribers.append(handler)

    # -- async core --------------------------------------------------------------
    async def acompletion(
        self, prompt: str, context: Any = None, *, on_event: EventHandler | None = None
    ) -> RunResult:
        return await self._run(prompt, context, on_event=on_event, stream_root=False)

    async def _run(
        self,
        prompt: str,
        context: Any,
        *,
        on_event: EventHandler | None,
        stream_root: bool,
    ) -> RunResult:
        check_prompt(prompt)
        return await self._run_loaded(
            prompt, load_context(context), on_event=on_event, stream_root=stream_root
        )

    async def _run_loaded(
        self,
        prompt: str,
        loaded: LoadedContext,
        *,
        on_event: EventHandler | None,
        stream_root: bool,
        shared: SharedSandbox | None = None,
        session_note: str | None = None,
        session: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        run_id = run_id or new_run_id()
        bus = EventBus()
        writer: TrajectoryWriter | None = None
        if self.config.trajectory.save:
            writer = TrajectoryWriter(self.config.trajectory.dir / f"{run_id}{SUFFIX}")
            bus.subscribe(writer)
        for handler in self._subscribers:
            bus.subscribe(handler)
        if on_event is not None:
            bus.subscribe(on_event)
        tree = RunTree(
            config=self.config,
            client=self.client,
            bus=bus,
            run_id=run_id,
            stream_root=stream_root,
            sandboxes=self._sandboxes,
        )
        root = Run(
            tree,
            prompt=prompt,
            context=loaded,
            depth=0,
            call_id=run_id,
            parent_call_id=None,
            shared=shared,
            session_note=session_note,
            session=session,
            searcher=self._searcher,
        )
        try:
            outcome = await root.execute()
        finally:
            if writer is not None:
                writer.close()
        return RunResult(
            answer=outcome.answer,
            partial=outcome.partial,
            stop_reason=outcome.stop_reason,
            usage=tree.ledger.total(),
            run_id=run_id,
            trajectory_path=writer.path if writer else None,
            iterations=outcome.iterations,
        )

    def astream(self, prompt: str, context: Any = None) -> AsyncGenerator[Event | RunResult, None]:
        """Yield the run's events as they happen (root-model token deltas included),
        then the `RunResult`."""
        return stream_run(
            lambda on_event: self._run(prompt, context, on_event=on_event, stream_root=True)
        )

    def session(self, context: Any = None) -> RLMSession:
        """A conversation of several completions over one persistent sandbox.

        `context` is loaded as `context`; later contexts as `context_1`, `context_2`...
        and earlier exchanges are in `history`. Use the session's sync methods or its
        async ones, not both: its sandbox lives on the event loop that first used it.
        """
        from rlmrt.engine.session import RLMSession

        return RLMSession(self, context)

    async def awarm(self) -> int:
        """Start the pooled sandboxes now rather than at the first run; how many are ready.

        Only slow-starting sandbox kinds (docker, wasm, process) are pooled, up to the
        `sandbox_pool` setting.
        """
        return await self._sandboxes.warm(self.config.sandbox.kind, self.config.limits)

    async def aclose(self) -> None:
        try:
            await self._sandboxes.aclose()
            await self._searcher.aclose()
        finally:
            await self.client.aclose()

    # -- sync facade ----------------------------------------------------------------
    def completion(self, prompt: str, context: Any = None) -> RunResult:
        """Synchronous form of `acompletion`."""
        return self._sync.run(self.acompletion(prompt, context))

    def warm(self) -> int:
        """Synchronous form of `awarm`."""
        return self._sync.run(self.awarm())

    def stream(self, prompt: str, context: Any = None) -> Iterator[Event | RunResult]:
        """Synchronous form of `astream`: events as they happen, then the result."""
        return self._iterate(self.astream(prompt, context))

    def _iterate(self, agen: AsyncGenerator[T, None]) -> Iterator[T]:
        """An async generator driven from sync code, on the facade's loop."""
        try:
            while True:
                try:
                    yield self._sync.run(_anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            self._sync.run(agen.aclose())

    def close(self) -> None:
        """Close the model client and stop the facade's loop."""
        try:
            self._sync.run(self.aclose())
        finally:
            self._sync.stop()

    def __enter__(self) -> RLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def stream_run(
    start: Callable[[EventHandler], Awaitable[RunResult]],
) -> AsyncGenerator[Event | RunResult, None]:
    """Run `start(on_event)` as a task; yield its events as they arrive, then its result.

    Leaving the loop early (break, an error) cancels the run."""
    queue: asyncio.Queue[Event] = asyncio.Queue()
    task = asyncio.ensure_future(start(queue.put_nowait))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()
            while not queue.empty():
                yield queue.get_nowait()
            yield task.result()
            return
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def check_prompt(prompt: object) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("the prompt must be a non-empty string")


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
