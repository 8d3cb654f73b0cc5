"""`RLMSession`: several completions, and code run directly, over one persistent sandbox.

Each completion is its own run (own run id, trajectory and budgets), started through
`Engine.run` like any other; what carries over is the REPL: variables the code defined,
every context given so far (`context`, then `context_1`, `context_2`, ...) and
`history`, the list of earlier exchanges.

The root `RunStarted` of each completion records its place in the session (session id,
index, the run ids of the earlier completions, the contexts loaded so far and the one
this completion added), so `rlm replay` can rebuild the REPL state before replaying it.

Code can also run in the session directly, with no model turn (`aexecute`: the MCP
tool `execute_python`). Each such execution is a `CodeExecuted` event (run id
`session-<id>`, parent None, depth 0, `iteration` counting the session's direct
executions) for the engine's handlers and the caller's `on_event`; it belongs to no
run, so no trajectory file holds it. Between runs, code may call `context_search`;
the model functions need a run (`rlm_query` & co raise a `UsageError` saying so).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, Awaitable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rlmrt._loop import LoopThread
from rlmrt.config import RLMConfig
from rlmrt.context.search import ContextSearch
from rlmrt.engine.context_input import load_context
from rlmrt.engine.prompts import session_note
from rlmrt.engine.run import SessionTurn, code_executed
from rlmrt.engine.shared import SessionHost, SharedSandbox
from rlmrt.engine.start import (
    DEFAULT_OUTPUT_RETRIES,
    Engine,
    RunResult,
    TypedOutput,
    check_prompt,
    iterate_on,
    stream_run,
    typed_output,
)
from rlmrt.errors import SandboxClosedError
from rlmrt.events import Event, EventHandler
from rlmrt.sandbox.base import ExecResult, SandboxBackend

if TYPE_CHECKING:
    from rlmrt.tools import Tool

__all__ = ["CodeSession", "RLMSession"]

NO_RUN = (
    "{fn} is not available in code run directly in a session (it has no model run); "
    "ask for a completion to use models"
)


class CodeSession:
    """A persistent sandbox that runs code directly: variables, contexts, events.

    Its sandbox starts at the first call. `RLMSession` adds completions on top; the
    MCP tools use this class as is (their sessions run no model). `no_run` is the
    message of a model function called by code when no run is in progress.
    """

    def __init__(
        self,
        config: RLMConfig,
        *,
        searcher: ContextSearch | None = None,
        handlers: Sequence[EventHandler] = (),
        no_run: str = NO_RUN,
    ) -> None:
        self.id = secrets.token_hex(6)
        self.config = config
        self._handlers = handlers
        self._host = SessionHost(searcher, no_run)
        self._shared: SharedSandbox | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self.executions = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def lock(self) -> asyncio.Lock:
        """Held by each call that uses the sandbox: it serves one at a time."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def aexecute(self, code: str, *, on_event: EventHandler | None = None) -> ExecResult:
        """Run `code` in the session's sandbox, with no model turn."""
        async with self.lock:
            backend = await self._backend()
            result = await backend.execute(code)
            self.executions += 1
        event = code_executed(
            code,
            result,
            run_id=f"session-{self.id}",
            call_id=f"x{self.executions}",
            parent_call_id=None,
            depth=0,
            iteration=self.executions,
        )
        for handler in [*self._handlers, *([on_event] if on_event is not None else [])]:
            handler(event)
        return result

    async def avariables(self) -> dict[str, str]:
        """The REPL's variables and their types."""
        async with self.lock:
            return await (await self._backend()).list_variables()

    async def aget_variable(self, name: str, *, rendered: bool = False) -> Any:
        async with self.lock:
            return await (await self._backend()).get_variable(name, rendered=rendered)

    async def aset_variable(self, name: str, value: Any) -> None:
        async with self.lock:
            await (await self._backend()).set_variable(name, value)

    async def astart(self) -> None:
        """Start the sandbox now rather than at the first call."""
        async with self.lock:
            await self._backend()

    async def _backend(self) -> SandboxBackend:
        self._check_open()
        if self._shared is None:
            shared = SharedSandbox(self.config, self._host)
            try:
                await shared.backend.start()
                await self._prepare(shared.backend)
            except BaseException:
                await shared.backend.aclose()
                raise
            self._shared = shared
        return self._shared.backend

    async def _prepare(self, backend: SandboxBackend) -> None:
        """What a new sandbox holds before the first call (nothing here)."""

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("this session is closed; start a new one")

    async def aclose(self) -> None:
        """Close the session's sandbox. Idempotent."""
        self._closed = True
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.backend.aclose()

    async def __aenter__(self) -> CodeSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class RLMSession(CodeSession):
    """Made by `RLM.session(context=...)`; close it (or use `with`) when done."""

    def __init__(self, engine: Engine, context: Any = None, *, loop: LoopThread) -> None:
        super().__init__(engine.config, searcher=engine.searcher, handlers=engine.handlers)
        self.engine = engine
        self._loop = loop
        self._first = load_context(context, engine.config.input)
        self._contexts: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []

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
        """Run `prompt` in the session; a `context` given here becomes `context_N`;
        `output_type` asks for a typed answer and `tools` are offered to the
        completion's code, as `RLM.acompletion`."""
        output = typed_output(output_type, output_retries)
        return await self.arun_turn(
            self.engine, prompt, context, on_event=on_event, output=output, tools=tools
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
        """Like `RLM.astream`: the completion's events as they happen (root-model token
        deltas included), then its `RunResult`."""
        output = typed_output(output_type, output_retries)

        def start(on_event: EventHandler) -> Awaitable[RunResult]:
            return self.arun_turn(
                self.engine,
                prompt,
                context,
                on_event=on_event,
                stream_root=True,
                output=output,
                tools=tools,
            )

        return stream_run(start)

    async def arun_turn(
        self,
        engine: Engine,
        prompt: str,
        context: Any = None,
        *,
        on_event: EventHandler | None = None,
        stream_root: bool = False,
        run_id: str | None = None,
        output: TypedOutput | None = None,
        tools: Sequence[Tool] = (),
    ) -> RunResult:
        """One completion, run by `engine`. Replays use it with their own engine (the
        recorded replies and settings) and the recorded `run_id` (code may have seen
        it in `history`); `acompletion` is this with the session's engine."""
        self._check_open()
        check_prompt(prompt)
        loaded = load_context(context, engine.config.input) if context is not None else None
        async with self.lock:  # one run at a time: the sandbox's bridge serves one
            backend = await self._backend()
            assert self._shared is not None  # started by _backend
            added: str | None = None
            if loaded is not None:
                added = f"context_{len(self._contexts)}"
                await backend.load_context(loaded.value, name=added)
                self._contexts[added] = loaded.metadata
            place = {
                "id": self.id,
                "index": len(self.history),
                "previous_runs": [h["run_id"] for h in self.history],
                "contexts": dict(self._contexts),
                "added_context": added,
            }
            turn = SessionTurn(
                sandbox=self._shared,
                note=session_note(self._contexts, len(self.history)),
                place=place,
            )
            result = await engine.run(
                prompt,
                self._first,
                on_event=on_event,
                stream_root=stream_root,
                turn=turn,
                run_id=run_id,
                output=output,
                tools=tools,
            )
            self.history.append(
                {
                    "prompt": prompt,
                    "answer": result.answer,
                    "partial": result.partial,
                    "run_id": result.run_id,
                }
            )
            await backend.set_variable("history", [dict(h) for h in self.history])
            return result

    async def _prepare(self, backend: SandboxBackend) -> None:
        await backend.load_context(self._first.value)
        await backend.set_variable("history", [])
        self._contexts["context"] = self._first.metadata

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
        """Synchronous form of `acompletion` (runs on the RLM's helper loop)."""
        return self._loop.run(
            self.acompletion(
                prompt,
                context,
                output_type=output_type,
                output_retries=output_retries,
                tools=tools,
            )
        )

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
            self._loop,
            self.astream(
                prompt,
                context,
                output_type=output_type,
                output_retries=output_retries,
                tools=tools,
            ),
        )

    def close(self) -> None:
        if self._shared is None:
            self._closed = True
            return
        self._loop.run(self.aclose())

    def __enter__(self) -> RLMSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RLMSession:
        return self
