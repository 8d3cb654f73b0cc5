"""OpenTelemetry spans of a run tree, built from its events (GenAI conventions).

One `SpanRecorder` per run tree, subscribed to its bus. The shape:

    invoke_agent rlm                  a run (root or child), INTERNAL
    ├── chat {model}                  a model call, CLIENT, gen_ai.* attributes
    └── execute_tool repl             a code execution
        └── execute_tool llm_query    a sub-call made by that code
            └── chat {model}          (llm_query) or invoke_agent rlm (rlm_query)

Span times are the events' times. Prompt, reply and code text go on the spans only
when `capture_content` is set. Needs the `otel` extra (imported by `rlmrt.observe.otel`
only when tracing is on).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from rlmrt.events import (
    Answer,
    BudgetWarning,
    CodeExecuted,
    CodeStarted,
    Compacted,
    CostWarning,
    Event,
    LimitNotEnforced,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    RunErrored,
    RunFinished,
    RunStarted,
    RunWaited,
    SandboxStarted,
    SubCallFinished,
    SubCallStarted,
    ToolCalled,
    TraceLinked,
)
from rlmrt.observe.execution import error_type, limit_hit

AGENT_NAME = "rlm"
TOOL_NAME = "repl"


def _ns(ts: float) -> int:
    return int(ts * 1e9)


def provider_name(model: str) -> str | None:
    """The provider of a `provider/name` model ("openai/gpt-4o" -> "openai")."""
    provider, sep, _ = model.partition("/")
    return provider if sep else None


def server_attributes(api_base: str | None) -> dict[str, Any]:
    """`server.address` / `server.port` of an OpenAI-compatible base URL."""
    if not api_base:
        return {}
    parts = urlsplit(api_base)
    found: dict[str, Any] = {}
    if parts.hostname:
        found["server.address"] = parts.hostname
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port:
        found["server.port"] = port
    return found


class SpanRecorder:
    """An event handler that turns one run tree's events into spans.

    `parent` is the OpenTelemetry context the root run joins (the caller's current
    span, if any); `emit` puts the `TraceLinked` event of each run on the bus, so the
    trajectory names the trace."""

    def __init__(
        self,
        tracer: Tracer,
        *,
        parent: otel_context.Context | None,
        capture_content: bool,
        api_base: str | None,
        emit: Callable[[Event], None],
    ) -> None:
        self._tracer = tracer
        self._parent = parent
        self._content = capture_content
        self._server = server_attributes(api_base)
        self._emit = emit
        self._spans: dict[str, Span] = {}  # open spans by call_id
        self._executing: dict[str, str] = {}  # run call_id -> its open execution's call_id

    def __call__(self, event: Event) -> None:
        handler = self._HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def close(self) -> None:
        """End the spans a run left open (it was cancelled or raised)."""
        for span in reversed(list(self._spans.values())):
            span.set_status(Status(StatusCode.ERROR, "the run ended before this finished"))
            span.end()
        self._spans.clear()

    # -- helpers ----------------------------------------------------------------
    def _start(
        self,
        event: Event,
        name: str,
        parent_id: str | None,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        parent_span = self._spans.get(parent_id) if parent_id is not None else None
        parent = trace.set_span_in_context(parent_span) if parent_span else self._parent
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes={"rlm.run_id": event.run_id, "rlm.call_id": event.call_id, **attributes},
            start_time=_ns(event.ts),
        )
        self._spans[event.call_id] = span
        return span

    def _end(self, event: Event, attributes: dict[str, Any], error: str | None = None) -> None:
        span = self._spans.pop(event.call_id, None)
        if span is None:
            return
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=_ns(event.ts))

    def _note(self, event: Event, name: str, attributes: dict[str, Any]) -> None:
        """A point event (warning, answer) on the run span it belongs to."""
        span = self._spans.get(event.call_id) or self._spans.get(event.parent_call_id or "")
        if span is not None:
            span.add_event(name, attributes, timestamp=_ns(event.ts))

    def _messages(self, role: str, text: str) -> str:
        return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])

    # -- runs -------------------------------------------------------------------
    def _run_started(self, event: RunStarted) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": AGENT_NAME,
            "gen_ai.request.model": event.model,
            "rlm.depth": event.depth,
            "rlm.sandbox": event.sandbox,
        }
        if self._content:
            attributes["gen_ai.input.messages"] = self._messages("user", event.prompt)
        span = self._start(event, f"invoke_agent {AGENT_NAME}", event.parent_call_id, attributes)
        ids = span.get_span_context()
        self._emit(
            TraceLinked(
                run_id=event.run_id,
                call_id=event.call_id,
                parent_call_id=event.parent_call_id,
                depth=event.depth,
                trace_id=f"{ids.trace_id:032x}",
                span_id=f"{ids.span_id:016x}",
            )
        )

    def _run_finished(self, event: RunFinished) -> None:
        usage = event.usage
        self._end(
            event,
            {
                "rlm.stop_reason": event.stop_reason,
                "rlm.partial": event.partial,
                "rlm.iterations": event.iterations,
                "gen_ai.usage.input_tokens": usage.get("input_tokens"),
                "gen_ai.usage.output_tokens": usage.get("output_tokens"),
                "rlm.cost_usd": usage.get("cost_usd"),
                "gen_ai.output.messages": (
                    self._messages("assistant", event.answer)
                    if self._content and event.answer is not None
                    else None
                ),
            },
            error="error" if event.stop_reason == "error" else None,
        )

    def _run_errored(self, event: RunErrored) -> None:
        span = self._spans.get(event.call_id)
        if span is not None:
            span.set_attribute("error.type", event.error_type)
            span.set_status(Status(StatusCode.ERROR, event.message))

    # -- model calls ------------------------------------------------------------
    def _model_started(self, event: ModelCallStarted) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event.model,
            "rlm.purpose": event.purpose,
            **self._server,
        }
        provider = provider_name(event.model)
        if provider is not None:
            attributes["gen_ai.provider.name"] = provider
        self._start(
            event, f"chat {event.model}", event.parent_call_id, attributes, kind=SpanKind.CLIENT
        )

    def _model_finished(self, event: ModelCallFinished) -> None:
        self._end(
            event,
            {
                "gen_ai.response.model": event.response_model or event.model,
                "gen_ai.response.finish_reasons": (
                    [event.finish_reason] if event.finish_reason else None
                ),
                "gen_ai.usage.input_tokens": event.input_tokens,
                "gen_ai.usage.output_tokens": event.output_tokens,
                # parts of the two above, set when the provider reported them
                "gen_ai.usage.cache_read.input_tokens": event.cache_read_tokens or None,
                "gen_ai.usage.cache_creation.input_tokens": event.cache_write_tokens or None,
                "gen_ai.usage.reasoning.output_tokens": event.reasoning_tokens or None,
                "rlm.cost_usd": event.cost_usd,
                "gen_ai.output.messages": (
                    self._messages("assistant", event.response) if self._content else None
                ),
            },
        )

    def _model_failed(self, event: ModelCallFailed) -> None:
        self._end(event, {}, error=event.error_type)

    # -- code and sub-calls -----------------------------------------------------
    def _code_started(self, event: CodeStarted) -> None:
        self._start(event, f"execute_tool {TOOL_NAME}", event.parent_call_id, self._tool(TOOL_NAME))
        if event.parent_call_id is not None:
            self._executing[event.parent_call_id] = event.call_id

    def _code_executed(self, event: CodeExecuted) -> None:
        if event.call_id not in self._spans:  # FINAL_VAR read, or a trajectory of v3
            started = CodeStarted(
                run_id=event.run_id,
                call_id=event.call_id,
                parent_call_id=event.parent_call_id,
                depth=event.depth,
                ts=event.ts - event.duration_s,
                iteration=event.iteration,
            )
            self._code_started(started)
        if event.parent_call_id is not None:
            self._executing.pop(event.parent_call_id, None)
        output = event.stdout.encode("utf-8", "replace") + event.stderr.encode("utf-8", "replace")
        self._end(
            event,
            {
                "rlm.iteration": event.iteration,
                "rlm.exec.output_bytes": len(output),
                "rlm.exec.limit_hit": limit_hit(event.error),
                "gen_ai.tool.call.arguments": event.code if self._content else None,
                "gen_ai.tool.call.result": event.stdout if self._content else None,
            },
            error=error_type(event.error),
        )

    def _sub_started(self, event: SubCallStarted) -> None:
        run_id = event.parent_call_id or ""
        parent = self._executing.get(run_id, run_id)
        attributes = self._tool(f"{event.sub_kind}_query")
        if self._content:
            attributes["gen_ai.tool.call.arguments"] = event.prompt
        self._start(event, f"execute_tool {event.sub_kind}_query", parent, attributes)

    def _sub_finished(self, event: SubCallFinished) -> None:
        self._end(
            event,
            {"gen_ai.tool.call.result": event.response if self._content else None},
            error=None if event.ok else "SubCallError",
        )

    def _tool_called(self, event: ToolCalled) -> None:
        """A call of `tools.NAME(...)`: one event, so its span starts `duration_s` back."""
        run_id = event.parent_call_id or ""
        attributes = {**self._tool(event.tool), "rlm.tool.version": event.version or ""}
        started = dataclasses.replace(event, ts=event.ts - event.duration_s)
        self._start(
            started, f"execute_tool {event.tool}", self._executing.get(run_id, run_id), attributes
        )
        error = None if event.ok else (event.error or "ToolError").split(":", 1)[0]
        self._end(event, {}, error=error)

    @staticmethod
    def _tool(name: str) -> dict[str, Any]:
        return {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.type": "function",
        }

    # -- point events -----------------------------------------------------------
    def _answer(self, event: Answer) -> None:
        self._note(event, "rlm.answer", {"rlm.partial": event.partial, "rlm.source": event.source})

    def _budget_warning(self, event: BudgetWarning) -> None:
        self._note(event, "rlm.budget_warning", {"rlm.limit": event.limit})

    def _cost_warning(self, event: CostWarning) -> None:
        self._note(event, "rlm.cost_warning", {"gen_ai.request.model": event.model})

    def _unenforced(self, event: LimitNotEnforced) -> None:
        self._note(event, "rlm.limit_not_enforced", {"rlm.limits": event.limits})

    def _compacted(self, event: Compacted) -> None:
        self._note(event, "rlm.compacted", {"rlm.tokens_before": event.tokens_before})

    def _sandbox(self, event: SandboxStarted) -> None:
        attributes = {"rlm.pooled": event.pooled, "rlm.start_s": event.start_s}
        self._note(event, "rlm.sandbox_started", attributes)

    def _waited(self, event: RunWaited) -> None:
        self._note(event, "rlm.run_waited", {"rlm.waited_s": event.waited_s})

    _HANDLERS: ClassVar[dict[type[Event], Callable[[SpanRecorder, Any], None]]] = {
        RunStarted: _run_started,
        RunFinished: _run_finished,
        RunErrored: _run_errored,
        ModelCallStarted: _model_started,
        ModelCallFinished: _model_finished,
        ModelCallFailed: _model_failed,
        CodeStarted: _code_started,
        CodeExecuted: _code_executed,
        SubCallStarted: _sub_started,
        SubCallFinished: _sub_finished,
        ToolCalled: _tool_called,
        Answer: _answer,
        BudgetWarning: _budget_warning,
        CostWarning: _cost_warning,
        LimitNotEnforced: _unenforced,
        Compacted: _compacted,
        RunWaited: _waited,
        SandboxStarted: _sandbox,
    }
