"""What one run tree shares: config, model client, event bus, ledger, budget, limits,
context search.

Every model call of the tree goes through `RunTree.model_call`, which checks the
budget, holds the tree's concurrency semaphore, and emits the events that the ledger
(and every other consumer) reads. Its `run_slots` bound the child runs that run at
once (`max_concurrent_runs`, engine/slots.py). Its `ready` (from `Engine.run`) is what
the first model request waits for: the run sets up (sandbox, context, prompt) while
its caller finishes something the model must not be called before (the server: the
run's start, committed).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from rlmrt.config import RLMConfig
from rlmrt.context.search import ContextSearch
from rlmrt.engine.budget import Budget
from rlmrt.engine.slots import RunSlots
from rlmrt.errors import BudgetExceededError, ModelError
from rlmrt.events import (
    BudgetWarning,
    CostWarning,
    Event,
    EventBus,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallPurpose,
    ModelCallStarted,
    TokenDelta,
)
from rlmrt.llm.base import ChatMessage, DeltaCallback, ModelClient, ModelReply
from rlmrt.llm.call_site import MODEL_CALL
from rlmrt.llm.pricing import cost_usd
from rlmrt.memory.backend import FileMemory, MemoryBackend
from rlmrt.observe.costs import ProjectSpend
from rlmrt.observe.usage import UsageLedger
from rlmrt.sandbox.pool import SandboxPool
from rlmrt.tools import ToolBox


class RunTree:
    def __init__(
        self,
        *,
        config: RLMConfig,
        client: ModelClient,
        bus: EventBus,
        run_id: str,
        stream_root: bool = False,
        sandboxes: SandboxPool | None = None,
        searcher: ContextSearch | None = None,
        spent_before: ProjectSpend | None = None,
        tools: ToolBox | None = None,
        memory: MemoryBackend | None = None,
        ready: Awaitable[None] | None = None,
    ) -> None:
        self.config = config
        # awaited (shielded: a cancelled run does not cancel it) before every model
        # request; done, it costs nothing; failed, no model is called: its error is raised
        self._ready = asyncio.ensure_future(ready) if ready is not None else None
        # what `memory.*` and the first prompt's recall reach (default: the project's)
        self.memory: MemoryBackend = memory or FileMemory(
            config.memory.path, settings=config.memory
        )
        self.tools = tools  # what `tools.NAME(...)` reaches; None: no tools offered
        self.sandboxes = sandboxes or SandboxPool(0)
        self.searcher = searcher  # what context_search() asks; None: no provider
        self.client = client
        self.bus = bus
        self.run_id = run_id
        self.stream_root = stream_root
        self.ledger = UsageLedger()
        bus.subscribe(self.ledger)
        self.budget = Budget(
            config.budget,
            self.ledger,
            warn=self._budget_warning,
            spent_before=spent_before,
        )
        self.semaphore = asyncio.Semaphore(config.budget.max_concurrency)
        self.run_slots = RunSlots(config.budget.max_concurrent_runs)
        self._ids = itertools.count(1)
        self._cost_warned: set[str] = set()
        self._window: int | bool | None = False  # False: not looked up yet

    def context_window(self) -> int | None:
        """The root model's window in tokens, for compaction (None: do not compact).

        `context_window_tokens` when set; otherwise LiteLLM's model info, asked only for
        models that go through LiteLLM (the OpenAI-compatible fast path never imports
        it: there, an unset window means no compaction)."""
        if self._window is False:
            self._window = self.config.prompt.context_window_tokens or _litellm_window(self.config)
        return self._window if isinstance(self._window, int) else None

    def new_call_id(self) -> str:
        return f"c{next(self._ids)}"

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def _budget_warning(self, limit: str, message: str) -> None:
        self.emit(
            BudgetWarning(
                run_id=self.run_id,
                call_id=self.run_id,
                parent_call_id=None,
                depth=0,
                limit=limit,
                message=message,
            )
        )

    async def model_call(
        self,
        messages: Sequence[ChatMessage],
        *,
        parent_call_id: str,
        depth: int,
        purpose: ModelCallPurpose,
        model: str | None = None,
        closing: bool = False,
        temperature: float | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelReply:
        """One model call of the tree, with budget check, semaphore and events.

        Every call, its retries and their waits included, ends when the tree's wall
        time does; its `max_tokens` is capped by the output tokens (and, for a model
        with a known price, the cost) left. The `closing` call (the best answer after
        a limit stopped the run) is not refused for the spent budget: it gets
        `Budget.closing_slice_s()` past the wall time instead."""
        if self._ready is not None:
            await asyncio.shield(self._ready)
        if not closing:
            self.budget.check()
        call_id = self.new_call_id()
        ids: dict[str, Any] = {
            "run_id": self.run_id,
            "call_id": call_id,
            "parent_call_id": parent_call_id,
            "depth": depth,
        }
        model_name = (
            model or (self.config.llm.sub_model if purpose == "sub" else None) or self.client.model
        )
        started_event = ModelCallStarted(
            **ids,
            model=model_name,
            purpose=purpose,
            message_count=len(messages),
        )
        self.emit(started_event)
        on_delta: DeltaCallback | None = None
        if self.stream_root and depth == 0 and purpose != "sub":

            def emit_delta(text: str) -> None:
                self.emit(
                    TokenDelta(
                        **ids,
                        text=text,
                    )
                )

            on_delta = emit_delta

        started = time.perf_counter()
        site = MODEL_CALL.set(started_event)
        try:
            async with self.semaphore:
                reply = await self._complete(
                    messages,
                    model_name,
                    on_delta,
                    closing=closing,
                    temperature=temperature,
                    seed=seed,
                    response_format=response_format,
                )
        except (ModelError, BudgetExceededError, asyncio.CancelledError) as exc:
            self.emit(
                ModelCallFailed(
                    **ids,
                    model=model_name,
                    purpose=purpose,
                    error_type=type(exc).__name__,
                    message=str(exc) or "cancelled",
                    duration_s=time.perf_counter() - started,
                    attempts=exc.attempts if isinstance(exc, ModelError) else 1,
                )
            )
            raise
        finally:
            MODEL_CALL.reset(site)
        if reply.cut_at is not None:
            self.emit(
                BudgetWarning(
                    **ids,
                    limit="max_reply_chars",
                    message=(
                        f"the reply of model {model_name} was cut at {reply.cut_at:,} characters"
                        " (max_reply_chars): the rest was not read"
                    ),
                )
            )
        cost, known = cost_usd(
            reply.model or model_name,
            reply.input_tokens,
            reply.output_tokens,
            self.config.llm.prices,
            cache_read_tokens=reply.cache_read_tokens,
            cache_write_tokens=reply.cache_write_tokens,
            reasoning_tokens=reply.reasoning_tokens,
        )
        if not known and model_name not in self._cost_warned:
            self._cost_warned.add(model_name)
            self.emit(
                CostWarning(
                    **ids,
                    model=model_name,
                    message=(
                        f"no price known for model {model_name!r}: its cost counts as 0; "
                        "set prices in rlm.toml to track it"
                    ),
                )
            )
        self.emit(
            ModelCallFinished(
                **ids,
                model=model_name,
                purpose=purpose,
                response=reply.text,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cache_read_tokens=reply.cache_read_tokens,
                cache_write_tokens=reply.cache_write_tokens,
                reasoning_tokens=reply.reasoning_tokens,
                cost_usd=cost,
                duration_s=time.perf_counter() - started,
                attempts=reply.attempts,
                response_model=reply.model or None,
                finish_reason=reply.finish_reason,
            )
        )
        return reply

    async def _complete(
        self,
        messages: Sequence[ChatMessage],
        model_name: str,
        on_delta: DeltaCallback | None,
        *,
        closing: bool,
        temperature: float | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelReply:
        """The call itself, cut off when the tree's wall time (plus the closing slice,
        for the closing call) runs out."""
        model = None if model_name == self.client.model else model_name
        options: dict[str, Any] = {}
        cap = self._max_tokens(model_name)
        if cap is not None:  # only then: clients of users may not know the argument
            options["max_tokens"] = cap
        if seed is not None:  # the same
            options["seed"] = seed
        if response_format is not None:  # the same
            options["response_format"] = response_format
        call = self.client.complete(
            messages, model=model, on_delta=on_delta, temperature=temperature, **options
        )
        remaining = self.budget.closing_time_left_s() if closing else self.budget.remaining_time_s()
        if remaining is None:
            return await call
        try:
            return await asyncio.wait_for(call, timeout=max(remaining, 0.001))
        except asyncio.TimeoutError as exc:
            wall = self.config.budget.max_wall_time_s or 0.0
            raise BudgetExceededError(
                "max_wall_time_s",
                f"budget exhausted: max_wall_time_s={wall:g} reached during a model call"
                + (" (the closing call's slice included)" if closing else ""),
            ) from exc

    def _max_tokens(self, model_name: str) -> int | None:
        """The reply-length cap of a call: the output tokens left, and what the cost
        left buys at the model's output price when it is known (None: no cap)."""
        caps: list[int] = []
        tokens_left = self.budget.output_tokens_left()
        if tokens_left is not None:
            caps.append(tokens_left)
        cost_left = self.budget.cost_left_usd()
        if cost_left is not None:
            per_token, known = cost_usd(model_name, 0, 1, self.config.llm.prices)
            if known and per_token > 0:
                caps.append(int(round(cost_left / per_token, 6)))  # 0.5/1e-5 is 49999.99...
        return max(1, min(caps)) if caps else None


def _litellm_window(config: RLMConfig) -> int | None:
    from rlmrt.llm import uses_openai_fast_path

    model = config.llm.model
    if not model or uses_openai_fast_path(model, config.llm.api_base):
        return None
    from rlmrt.llm._litellm import import_litellm

    try:
        info = import_litellm().get_model_info(model)
    except Exception:  # noqa: BLE001 - LiteLLM raises a bare Exception for unknown models
        return None
    window = info.get("max_input_tokens") or info.get("max_tokens")
    return window if isinstance(window, int) and window > 0 else None
