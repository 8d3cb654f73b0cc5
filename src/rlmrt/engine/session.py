"""`RLMSession`: several completions over one persistent sandbox.

Each completion is its own run (own run id, trajectory and budgets); what carries over
is the REPL: variables the code defined, every context given so far (`context`, then
`context_1`, `context_2`, ...) and `history`, the list of earlier exchanges.

The root `RunStarted` of each completion records its place in the session (session id,
index, the run ids of the earlier completions, the contexts loaded so far and the one
this completion added), so `rlm replay` can rebuild the REPL state before replaying it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rlmrt.engine.context_input import load_context
from rlmrt.engine.prompts import session_note
from rlmrt.engine.run import SharedSandbox
from rlmrt.errors import SandboxClosedError

if TYPE_CHECKING:
    from rlmrt.engine.rlm import RLM, RunResult
    from rlmrt.events import Event, EventHandler


class RLMSession:
    """Made by `RLM.session(context=...)`; close it (or use `with`) when done."""

    def __init__(self, rlm: RLM, context: Any = None) -> None:
        self._rlm = rlm
        self.id = secrets.token_hex(6)
        self._first = load_context(context)
        self._shared: SharedSandbox | None = None
        self._contexts: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self._lock: asyncio.Lock | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def acompletion(
        self, prompt: str, context: Any = None, *, on_event: EventHandler | None = None
    ) -> RunResult:
        """Run `prompt` in the session; a `context` given here becomes `context_N`."""
        return await self._complete(prompt, context, on_event=on_event, stream_root=False)

    def astream(self, prompt: str, context: Any = None) -> AsyncGenerator[Event | RunResult, None]:
        """Like `RLM.astream`: the completion's events as they happen (root-model token
        deltas included), then its `RunResult`."""
        from rlmrt.engine.rlm import stream_run

        return stream_run(
            lambda on_event: self._complete(prompt, context, on_event=on_event, stream_root=True)
        )

    async def _complete(
        self,
        prompt: str,
        context: Any,
        *,
        on_event: EventHandler | None,
        stream_root: bool,
        run_id: str | None = None,
    ) -> RunResult:
        """One completion; `run_id` is given by a replay, which reuses the recorded ids
        (code may have seen them in `history`)."""
        from rlmrt.engine.rlm import check_prompt

        self._check_open()
        check_prompt(prompt)
        loaded = load_context(context) if context is not None else None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one run at a time: the sandbox's bridge serves one
            self._check_open()
            shared = await self._sandbox()
            added: str | None = None
            if loaded is not None:
                added = f"context_{len(self._contexts)}"
                await shared.backend.load_context(loaded.value, name=added)
                self._contexts[added] = loaded.metadata
            place = {
                "id": self.id,
                "index": len(self.history),
                "previous_runs": [h["run_id"] for h in self.history],
                "contexts": dict(self._contexts),
                "added_context": added,
            }
            result = await self._rlm._run_loaded(
                prompt,
                self._first,
                on_event=on_event,
                stream_root=stream_root,
                shared=shared,
                session_note=session_note(self._contexts, len(self.history)),
                session=place,
                run_id=run_id,
            )
            self.history.append(
                {
                    "prompt": prompt,
                    "answer": result.answer,
                    "partial": result.partial,
                    "run_id": result.run_id,
                }
            )
            await shared.backend.set_variable("history", [dict(h) for h in self.history])
            return result

    async def _sandbox(self) -> SharedSandbox:
        if self._shared is None:
            shared = SharedSandbox(self._rlm.config)
            await shared.backend.start()
            try:
                await shared.backend.load_context(self._first.value)
                await shared.backend.set_variable("history", [])
            except BaseException:
                await shared.backend.aclose()
                raise
            self._contexts["context"] = self._first.metadata
            self._shared = shared
        return self._shared

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("this session is closed; start a new one with rlm.session()")

    async def aclose(self) -> None:
        """Close the session's sandbox. Idempotent."""
        self._closed = True
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.backend.aclose()

    # -- sync facade ----------------------------------------------------------------
    def completion(self, prompt: str, context: Any = None) -> RunResult:
        """Synchronous form of `acompletion` (runs on the RLM's helper loop)."""
        return self._rlm._sync.run(self.acompletion(prompt, context))

    def stream(self, prompt: str, context: Any = None) -> Iterator[Event | RunResult]:
        """Synchronous form of `astream`: events as they happen, then the result."""
        return self._rlm._iterate(self.astream(prompt, context))

    def close(self) -> None:
        if self._shared is None:
            self._closed = True
            return
        self._rlm._sync.run(self.aclose())

    def __enter__(self) -> RLMSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> RLMSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
