"""The one-line description of an event: the progress lines of `rlm run` (when not on
a terminal) and the progress messages of the MCP `rlm_completion` tool."""

from __future__ import annotations

from rlmrt.events import (
    Answer,
    BudgetWarning,
    CodeExecuted,
    CodeStarted,
    Compacted,
    CostWarning,
    Event,
    MemoryChanged,
    MemoryRecalled,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    OutputRejected,
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
from rlmrt.observe import format as fmt


def describe(event: Event) -> str | None:
    """A one-line description of `event` (None for events not worth a line)."""
    if isinstance(event, RunStarted):
        return (
            f'run started: "{fmt.preview(event.prompt)}" (model {event.model}, sandbox '
            f"{event.sandbox}, {fmt.context(event.context_metadata)})"
        )
    if isinstance(event, ModelCallStarted):
        return f"model call ({event.purpose}) to {event.model}"
    if isinstance(event, ModelCallFinished):
        return (
            f"model call ({event.purpose}) done: {event.input_tokens:,} in / "
            f"{event.output_tokens:,} out tok, {fmt.cost(event.cost_usd)}, "
            f"{fmt.duration(event.duration_s)}"
        )
    if isinstance(event, ModelCallFailed):
        return f"model call ({event.purpose}) failed: {event.error_type}: {event.message}"
    if isinstance(event, CodeStarted):
        return f"code running (iteration {event.iteration})"
    if isinstance(event, SandboxStarted):
        how = "from the pool" if event.pooled else "cold"
        return f"{event.sandbox} sandbox ready ({how}, {fmt.duration(event.start_s)})"
    if isinstance(event, TraceLinked):
        return f"trace {event.trace_id}"
    if isinstance(event, CodeExecuted):
        if event.error:
            lines = event.error.strip().splitlines()
            result = "error: " + (lines[-1] if lines else "?")
        else:
            result = fmt.preview(event.stdout) or "(no output)"
        return f"code ran (iteration {event.iteration}, {fmt.duration(event.duration_s)}): {result}"
    if isinstance(event, SubCallStarted):
        return f'{event.sub_kind}_query: "{fmt.preview(event.prompt)}"'
    if isinstance(event, SubCallFinished):
        outcome = "done" if event.ok else f"failed: {event.error}"
        return f"{event.sub_kind}_query {outcome} ({fmt.duration(event.duration_s)})"
    if isinstance(event, ToolCalled):
        outcome = "done" if event.ok else f"failed: {event.error}"
        return f"tools.{event.tool} {outcome} ({fmt.duration(event.duration_s)})"
    if isinstance(event, (BudgetWarning, CostWarning)):
        return f"warning: {event.message}"
    if isinstance(event, Compacted):
        return (
            f"conversation compacted: {event.messages_before} messages, "
            f"{event.tokens_before:,} of {event.window_tokens:,} tok"
        )
    if isinstance(event, RunWaited):
        return (
            f"waited {fmt.duration(event.waited_s)} for a run slot"
            f" (max_concurrent_runs {event.limit})"
        )
    if isinstance(event, Answer):
        return "partial answer (best effort)" if event.partial else f"answer ready ({event.source})"
    if isinstance(event, RunErrored):
        return f"error: {event.error_type}: {event.message}"
    if isinstance(event, MemoryRecalled):
        if event.purpose == "recall":
            return f"memory.recall: {len(event.items)} item(s)"
        what = "pinned item(s)" if event.purpose == "pinned" else "learned lesson(s)"
        return f"memory: {len(event.items)} {what} in the first prompt"
    if isinstance(event, MemoryChanged):
        if event.action == "forget":
            return f"memory.forget: {event.item_id}"
        return f'memory.remember: "{fmt.preview(event.text or "")}"'
    if isinstance(event, OutputRejected):
        return (
            f"answer does not fit the output type (misfit {event.attempt} of "
            f"{event.retries + 1}): "
            f"{fmt.preview(event.errors[0] if event.errors else '')}"
        )
    if isinstance(event, RunFinished):
        usage = event.usage
        total = int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        return (
            f"run finished: {event.stop_reason}, {event.iterations} iterations, "
            f"{fmt.tokens(total)}, {fmt.cost(float(usage.get('cost_usd', 0.0)))}, "
            f"{fmt.duration(float(usage.get('wall_time_s', 0.0)))}"
        )
    return None
