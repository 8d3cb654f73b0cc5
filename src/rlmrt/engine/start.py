"""The one way a run starts: `Engine.run`.

`RLM` (its completions and streams), `RLMSession`, replays and the servers all start
runs here. An `Engine` is what runs are made with (the model client, the settings, the
sandbox pool, the context search and the event handlers); a front that needs another
client or other settings (a replay) builds its own `Engine`, it never changes one.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from rlmrt._loop import LoopThread
from rlmrt.config import RLMConfig
from rlmrt.context.search import ContextSearch
from rlmrt.engine.context_input import LoadedContext
from rlmrt.engine.output_type import OutputType
from rlmrt.engine.run import Run, RunOutcome, SessionTurn
from rlmrt.engine.tree import RunTree
from rlmrt.errors import ConfigError, ModelError
from rlmrt.events import Event, EventBus, EventHandler
from rlmrt.llm.base import ModelClient
from rlmrt.memory.backend import MemoryBackend
from rlmrt.observe.costs import check_project_budgets
from rlmrt.observe.redact import known_secrets
from rlmrt.observe.trajectory import SUFFIX, TrajectoryWriter
from rlmrt.observe.usage import Usage
from rlmrt.observe.watchers import run_watchers
from rlmrt.sandbox.pool import SandboxPool
from rlmrt.tools import Tool, open_toolbox

__all__ = ["Engine", "RunResult", "check_prompt", "iterate_on", "new_run_id", "stream_run"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """The outcome of a run.

    `answer` is the final answer as text (None only when a limit stopped the run and
    even the best-effort call failed). `partial` is True when a limit ended the run;
    `stop_reason` names it ("final" when the model answered; "invalid_output" when
    the answers never fit the requested output type). `output` is the answer as the
    requested output type (None without one, or when no answer fit it). `usage` covers the whole
    run tree. `error` says why a streamed run failed (`stop_reason` "error"): a stream
    ends with its result, where `completion` raises.
    """

    answer: str | None
    partial: bool
    stop_reason: str
    usage: Usage
    run_id: str
    trajectory_path: Path | None
    iterations: int
    error: str | None = None
    output: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """What runs are made with. `sandboxes` gives every run that is not a session's
    turn its fresh sandbox (children of a session's run too); `handlers` get every
    event of every run (the list may grow: `RLM.subscribe`)."""

    client: ModelClient
    config: RLMConfig
    sandboxes: SandboxPool
    searcher: ContextSearch | None = None
    handlers: list[EventHandler] = field(default_factory=list)
    memory: MemoryBackend | None = None  # None: the project's store (`[memory] path`)

    async def run(
        self,
        prompt: str,
        context: LoadedContext,
        *,
        on_event: EventHandler | None = None,
        stream_root: bool = False,
        turn: SessionTurn | None = None,
        run_id: str | None = None,
        output: TypedOutput | None = None,
        tools: Sequence[Tool] = (),
        ready: Awaitable[None] | None = None,
    ) -> RunResult:
        """Run `prompt` over `context` to its answer.

        `stream_root` adds the root model's token deltas to the events (and a model
        error, such as a stream cut mid-reply, ends the run with an "error" result
        instead of raising: a stream ends with its result); `turn` runs it
        in a session's sandbox; `run_id` is given by replays, which keep the recorded
        ids (code may have seen them in a session's `history`); `tools` are offered to
        the run's code as `tools.NAME(...)`, with those granted in the settings;
        `ready` is awaited before the first model request (and raises there when it
        fails: no model is called), so the run's set-up overlaps it: the server
        commits the run's start meanwhile."""
        check_prompt(prompt)
        run_id = run_id or new_run_id()
        spent = check_project_budgets(self.config)
        error: str | None = None
        bus = EventBus()
        watchers = run_watchers(self.config, bus.emit, spent_today_usd=spent.today_usd)
        writer: TrajectoryWriter | None = None
        if self.config.trajectory.save:
            writer = TrajectoryWriter(
                self.config.trajectory.dir / f"{run_id}{SUFFIX}",
                secrets=known_secrets([self.config.api_key_value(), _embedding_key(self.config)]),
            )
            bus.subscribe(writer)
        for handler in self.handlers:
            bus.subscribe(handler)
        if on_event is not None:
            bus.subscribe(on_event)
        for watcher in watchers:  # last: spans link each run to its trace after its start
            bus.subscribe(watcher)
        try:  # MCP servers start here; a granted tool that does not fit stops the run
            toolbox = await open_toolbox(self.config.tools, tools)
        except BaseException:
            for watcher in watchers:
                watcher.close()
            if writer is not None:
                writer.close()
            raise
        tree = RunTree(
            config=self.config,
            client=self.client,
            bus=bus,
            run_id=run_id,
            stream_root=stream_root,
            sandboxes=self.sandboxes,
            searcher=self.searcher,
            spent_before=spent,
            tools=toolbox,
            memory=self.memory,
            ready=ready,
        )
        root = Run(
            tree,
            prompt=prompt,
            context=context,
            depth=0,
            call_id=run_id,
            parent_call_id=None,
            turn=turn,
            output_type=output.type if output else None,
            output_retries=output.retries if output else 0,
        )
        try:
            outcome = await root.execute()
        except ModelError as exc:
            if not stream_root:
                raise
            error = str(exc)
            # a stream ends with its result: this one says the run failed (its
            # RunErrored event, already streamed, says why)
            outcome = RunOutcome(
                answer=None,
                partial=True,
                stop_reason="error",
                iterations=root.iterations,
                usage=tree.ledger.total(),
            )
        finally:
            if toolbox is not None:
                await toolbox.aclose()
            for watcher in watchers:
                watcher.close()
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
            error=error,
            output=outcome.output,
        )


DEFAULT_OUTPUT_RETRIES = 2


@dataclass(frozen=True, slots=True)
class TypedOutput:
    """An output type a run is asked for, and how many misfits go back to the model."""

    type: OutputType
    retries: int


def typed_output(spec: object, retries: int = DEFAULT_OUTPUT_RETRIES) -> TypedOutput | None:
    """The run's typed output from a user's `output_type` (None: plain text answers)."""
    if spec is None:
        return None
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"output_retries must be an int >= 0, got {retries!r}")
    return TypedOutput(OutputType.of(spec), retries)


def new_run_id() -> str:
    """Sortable by time, unique enough for one user's runs."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}{now.microsecond // 1000:03d}-{secrets.token_hex(4)}"


def check_prompt(prompt: object) -> None:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("the prompt must be a non-empty string")


async def stream_run(
    start: Callable[[EventHandler], Awaitable[RunResult]],
) -> AsyncGenerator[Event | RunResult, None]:
    """Run `start(on_event)` as a task; yield its events as they arrive, then its result.

    Leaving the loop early (break, an error) cancels the run. The events wait in a
    deque and one `asyncio.Event` wakes the loop (each event and the task's end set
    it): no task per event, which a run of many events (a streamed reply's tokens)
    would pay for each."""
    pending: deque[Event] = deque()
    arrived = asyncio.Event()

    def on_event(event: Event) -> None:
        pending.append(event)
        arrived.set()

    task = asyncio.ensure_future(start(on_event))
    task.add_done_callback(lambda _: arrived.set())
    try:
        while True:
            await arrived.wait()
            arrived.clear()
            while pending:
                yield pending.popleft()
            if task.done():  # no await since `pending` emptied: nothing after it
                yield task.result()
                return
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def iterate_on(loop: LoopThread, agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """An async generator driven from sync code, on a facade's loop."""
    try:
        while True:
            try:
                yield loop.run(_anext(agen))
            except StopAsyncIteration:
                return
    finally:
        loop.run(agen.aclose())


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


def _embedding_key(config: RLMConfig) -> str | None:
    key = config.memory.embedding_api_key
    return key.get_secret_value() if key is not None else None
