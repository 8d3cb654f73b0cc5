"""Typed, versioned events of a run, and the per-run-tree event bus.

Every observable thing in a run is one of these events. The recursion tree is rebuilt
from `call_id` / `parent_call_id`: a run node (`RunStarted`) has the id of the
sub-call that spawned it as parent (None for the root); model calls, code executions
and sub-calls have the id of their run node as parent; the model call made by an
`llm_query` has the sub-call's id as parent.

Consumers (streaming, trajectory files, usage accounting, the CLI's live view)
subscribe to the bus; none of them keeps its own bookkeeping of the run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

# 2: `RunStarted.session` (a run made in a session). 3: `RunWaited` (a child run queued
# for a slot). 4: `attempts` of model calls. 5: `CodeStarted` (an execution began; its
# `CodeExecuted` has the same call_id), `TraceLinked` (the trace of a traced run) and
# `SandboxStarted` (a run's sandbox, cold or from the pool); `ModelCallFinished`'s
# `response_model` and `finish_reason`. 6: `ToolCalled` (a call of `tools.NAME(...)`).
# 7: `RunStarted.tools` (the version, schema digest and source of each offered tool).
# Readers take any version: a field a newer version added is ignored, one an older
# version lacks keeps its default; an unknown kind is an error.
EVENT_SCHEMA_VERSION = 7

SubCallKind = Literal["llm", "rlm"]
ModelCallPurpose = Literal["root", "sub", "final", "compact"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields shared by every event."""

    kind: ClassVar[str] = "event"
    run_id: str
    call_id: str
    parent_call_id: str | None
    depth: int
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["kind"] = self.kind
        data["v"] = EVENT_SCHEMA_VERSION
        return data


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    prompt: str
    model: str
    sandbox: str
    context_metadata: dict[str, Any]
    max_depth: int | None = None  # the tree's setting, so a replay recurses alike
    # root runs of a session: {"id", "index", "previous_runs", "contexts",
    # "added_context"} (see RLMSession), so a replay can rebuild the REPL state first
    session: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None  # the JSON Schema an output type asked for
    # root runs: {name: {"version", "schema_digest", "source"}} of each tool offered to
    # the tree (`ToolBox.record`), so a replay can warn when a tool changed since
    tools: dict[str, dict[str, str | None]] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    answer: str | None
    partial: bool
    stop_reason: str
    iterations: int
    usage: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallStarted(Event):
    kind: ClassVar[str] = "model_call_started"
    model: str
    purpose: ModelCallPurpose
    message_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenDelta(Event):
    """A piece of a root model reply as it streams in (call_id is the model call's)."""

    kind: ClassVar[str] = "token_delta"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallFinished(Event):
    kind: ClassVar[str] = "model_call_finished"
    model: str
    purpose: ModelCallPurpose
    response: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float
    attempts: int = 1  # requests made, retries included: each counts as a model call
    # parts of input_tokens (prompt cache) and output_tokens (reasoning), as reported
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # what the provider said: the model that answered and why the reply ended
    response_model: str | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallFailed(Event):
    kind: ClassVar[str] = "model_call_failed"
    model: str
    purpose: ModelCallPurpose
    error_type: str
    message: str
    duration_s: float
    attempts: int = 1  # requests made, retries included: each counts as a model call


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeStarted(Event):
    """A code block began executing; its `CodeExecuted` has the same call_id. Sub-calls
    emitted in between were made by this block."""

    kind: ClassVar[str] = "code_started"
    iteration: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeExecuted(Event):
    kind: ClassVar[str] = "code_executed"
    iteration: int
    code: str
    stdout: str
    stderr: str
    error: str | None
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SubCallStarted(Event):
    kind: ClassVar[str] = "sub_call_started"
    sub_kind: SubCallKind
    prompt: str
    model: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubCallFinished(Event):
    kind: ClassVar[str] = "sub_call_finished"
    sub_kind: SubCallKind
    ok: bool
    response: str | None
    error: str | None
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled(Event):
    """Code called a tool (`tools.NAME(...)`, or an item of `tools.batch`). The arguments
    are kept as a digest only (they may be large or private); `version` is None when
    no offered tool has that name."""

    kind: ClassVar[str] = "tool_called"
    tool: str
    version: str | None
    arguments_digest: str
    ok: bool
    error: str | None
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetWarning(Event):
    kind: ClassVar[str] = "budget_warning"
    limit: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CostWarning(Event):
    """The cost of a model is unknown: it is counted as 0."""

    kind: ClassVar[str] = "cost_warning"
    model: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitNotEnforced(Event):
    """A sandbox limit is set but the run's sandbox kind cannot enforce it."""

    kind: ClassVar[str] = "limit_not_enforced"
    sandbox: str
    limits: list[str]
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Compacted(Event):
    """The root conversation neared the model's window and restarted from a summary.

    `tokens_before` is the input-token count of the call that crossed the threshold;
    the whole earlier conversation went to the sandbox variable `conversation_log`.
    """

    kind: ClassVar[str] = "compacted"
    tokens_before: int
    window_tokens: int
    messages_before: int
    summary_chars: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWaited(Event):
    """A run waited for one of the tree's `max_concurrent_runs` slots before its
    sandbox started (or before its code went on after its own child runs finished)."""

    kind: ClassVar[str] = "run_waited"
    waited_s: float
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxStarted(Event):
    """A run got its sandbox: started for it (cold) or taken from the pool, after
    `start_s` seconds."""

    kind: ClassVar[str] = "sandbox_started"
    sandbox: str
    pooled: bool
    start_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLinked(Event):
    """The OpenTelemetry trace a run's spans went to (hex ids of the trace and of the
    run's `invoke_agent` span), so a trajectory leads to its trace."""

    kind: ClassVar[str] = "trace_linked"
    trace_id: str
    span_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Event):
    kind: ClassVar[str] = "answer"
    answer: str
    partial: bool
    source: Literal["code", "text", "best_effort"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryRecalled(Event):
    """Memory items a run's first prompt shows: each {"id", "kind", "text"}; `purpose`
    says why ("pinned": pinned by the user; "lessons": learned notes like the question)."""

    kind: ClassVar[str] = "memory_recalled"
    purpose: Literal["pinned", "lessons", "recall"]  # "recall": code's memory.recall
    items: list[dict[str, str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryChanged(Event):
    """Code remembered (`text` given) or forgot an item of the project's memory."""

    kind: ClassVar[str] = "memory_changed"
    action: Literal["remember", "forget"]
    item_id: str
    text: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputRejected(Event):
    """A FINAL value that does not fit the run's output type; `errors` name each field."""

    kind: ClassVar[str] = "output_rejected"
    answer: str
    errors: list[str]
    attempt: int
    retries: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunErrored(Event):
    kind: ClassVar[str] = "error"
    error_type: str
    message: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        RunFinished,
        ModelCallStarted,
        TokenDelta,
        ModelCallFinished,
        ModelCallFailed,
        CodeStarted,
        CodeExecuted,
        SubCallStarted,
        SubCallFinished,
        ToolCalled,
        BudgetWarning,
        CostWarning,
        LimitNotEnforced,
        Compacted,
        RunWaited,
        SandboxStarted,
        TraceLinked,
        Answer,
        MemoryRecalled,
        MemoryChanged,
        OutputRejected,
        RunErrored,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from its `to_dict()` form (e.g. a trajectory line)."""
    kind = data.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event kind: {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


EventHandler = Callable[[Event], None]


class EventBus:
    """Delivers each event, in order, to every subscriber of one run tree.

    Handlers run synchronously in the emitting thread; they must be quick (append to
    a file, put on a queue). A failing handler is a bug in that consumer, so its
    exception propagates instead of being hidden.
    """

    def __init__(self) -> None:
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for handler in tuple(self._handlers):
            handler(event)
