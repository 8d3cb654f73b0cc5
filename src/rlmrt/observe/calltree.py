"""The run tree rebuilt from events: the model every view of a run draws.

One model serves the live view of `rlm run` (fed events as they happen, drawn by
Rich's refresh thread in `rlmrt.cli.calltree`), `rlm logs RUN_ID` (fed the events of a
trajectory file) and the visualizer (`rlmrt.visualize`, which also reads the full texts
kept on the nodes). Run totals come from `UsageLedger`, so they match what the engine
reported; the totals of iterations, code blocks and sub-calls add up the model calls
below them.

Shape: run → iteration → model call, code block → sub-call → model call | child run.
Sub-calls are emitted before the `CodeExecuted` of the block that made them, so they
wait under an "open" code node that the block's event later fills in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from rlmrt.events import (
    Answer,
    BudgetWarning,
    CodeExecuted,
    CostWarning,
    Event,
    ModelCallFailed,
    ModelCallFinished,
    ModelCallStarted,
    RunErrored,
    RunFinished,
    RunStarted,
    SubCallFinished,
    SubCallStarted,
    ToolCalled,
)
from rlmrt.observe import format as fmt
from rlmrt.observe.usage import Usage, UsageLedger

NodeKind = Literal["run", "iteration", "model", "code", "sub", "note"]
Status = Literal["running", "ok", "partial", "error", "warn"]


@dataclass(slots=True, eq=False)
class Node:
    id: str
    kind: NodeKind
    title: str
    detail: str = ""
    status: Status = "running"
    started: float | None = None
    ended: float | None = None
    duration_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    children: list[Node] = field(default_factory=list)
    # full texts: a model call's reply; a code block's code and what it printed
    response: str = ""
    code: str = ""
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    # run nodes only
    depth: int = 0
    prompt: str = ""
    model: str = ""
    answer: str | None = None
    stop_reason: str | None = None
    iterations: int = 0

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


class CallTree:
    """An event handler that keeps the tree of one run. Safe to render from another
    thread while events arrive."""

    def __init__(self) -> None:
        self.ledger = UsageLedger()
        self.root: Node | None = None
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.lock = threading.Lock()
        self._nodes: dict[str, Node] = {}
        self._iteration: dict[str, Node] = {}  # run id -> its current iteration
        self._open_code: dict[str, Node] = {}  # iteration id -> code block still running

    @classmethod
    def of(cls, events: Iterable[Event]) -> CallTree:
        """The tree of a finished (or abandoned) stream of events."""
        tree = cls()
        for event in events:
            tree(event)
        return tree

    # -- feeding -------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        with self.lock:
            self.ledger(event)
            if self.first_ts is None:
                self.first_ts = event.ts
            self.last_ts = event.ts
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, ModelCallStarted):
            self._model_started(event)
        elif isinstance(event, ModelCallFinished):
            node = self._nodes.get(event.call_id)
            if node is not None:
                node.status = "ok"
                node.input_tokens = event.input_tokens
                node.output_tokens = event.output_tokens
                node.cost_usd = event.cost_usd
                node.duration_s = event.duration_s
                node.ended = event.ts
                node.response = event.response
                node.detail = "→ " + fmt.preview(event.response, 50)
                self._touch_iteration(node, event.ts)
        elif isinstance(event, ModelCallFailed):
            node = self._nodes.get(event.call_id)
            if node is not None:
                node.status = "error"
                node.duration_s = event.duration_s
                node.ended = event.ts
                node.detail = f"{event.error_type}: {fmt.preview(event.message, 80)}"
                self._touch_iteration(node, event.ts)
        elif isinstance(event, CodeExecuted):
            self._code_executed(event)
        elif isinstance(event, SubCallStarted):
            self._sub_started(event)
        elif isinstance(event, SubCallFinished):
            node = self._nodes.get(event.call_id)
            if node is not None:
                node.status = "ok" if event.ok else "error"
                node.duration_s = event.duration_s
                node.ended = event.ts
                node.response = event.response or ""
                if event.ok:
                    node.detail += " → " + fmt.preview(event.response, 40)
                else:
                    node.detail += " → " + fmt.preview(event.error, 60)
        elif isinstance(event, ToolCalled):
            self._tool_called(event)
        elif isinstance(event, (BudgetWarning, CostWarning)):
            if self.root is not None:
                self._note(self.root, "warn", "warning", event.message)
        elif isinstance(event, Answer):
            run = self._nodes.get(event.call_id)
            if run is not None:
                run.answer = event.answer
        elif isinstance(event, RunErrored):
            run = self._nodes.get(event.call_id)
            if run is not None:
                self._note(run, "error", "error", f"{event.error_type}: {event.message}")
        elif isinstance(event, RunFinished):
            self._run_finished(event)

    def _run_started(self, event: RunStarted) -> None:
        node = Node(
            id=event.call_id,
            kind="run",
            title="run" if event.parent_call_id is None else f"child run (depth {event.depth})",
            detail=f'"{fmt.preview(event.prompt, 50)}" [{fmt.context(event.context_metadata)}]',
            started=event.ts,
            depth=event.depth,
            prompt=event.prompt,
            model=event.model,
        )
        self._nodes[node.id] = node
        parent = self._nodes.get(event.parent_call_id) if event.parent_call_id else None
        if parent is not None:
            parent.children.append(node)
        elif self.root is None:
            self.root = node

    def _model_started(self, event: ModelCallStarted) -> None:
        parent = self._nodes.get(event.parent_call_id or "")
        if parent is None:
            return
        title = {
            "root": "model",
            "sub": "model",
            "final": "best-effort answer",
            "compact": "compaction",
        }[event.purpose]
        node = Node(
            id=event.call_id, kind="model", title=f"{title} {event.model}", started=event.ts
        )
        self._nodes[node.id] = node
        if event.purpose == "root" and parent.kind == "run":
            parent.iterations += 1
            iteration = Node(
                id=f"{parent.id}#{parent.iterations}",
                kind="iteration",
                title=f"iteration {parent.iterations}",
                started=event.ts,
                ended=event.ts,
            )
            self._finish_iteration(parent.id)
            self._iteration[parent.id] = iteration
            parent.children.append(iteration)
            iteration.children.append(node)
        else:
            self._finish_iteration(parent.id)
            parent.children.append(node)

    def _finish_iteration(self, run_id: str) -> None:
        iteration = self._iteration.pop(run_id, None)
        if iteration is not None:
            self._open_code.pop(iteration.id, None)
            if iteration.status == "running":
                iteration.status = "ok"

    def _touch_iteration(self, node: Node, ts: float) -> None:
        for iteration in self._iteration.values():
            if node in iteration.children:
                iteration.ended = ts
                if node.status == "error":
                    iteration.status = "error"

    def _code_node(self, run_id: str, ts: float) -> tuple[Node, Node] | None:
        """The open code block of the run's current iteration (made if needed)."""
        iteration = self._iteration.get(run_id)
        if iteration is None:
            return None
        code = self._open_code.get(iteration.id)
        if code is None:
            count = sum(1 for child in iteration.children if child.kind == "code")
            code = Node(
                id=f"{iteration.id}#code{count + 1}",
                kind="code",
                title="code",
                detail="running",
                started=iteration.ended or ts,
            )
            iteration.children.append(code)
            self._open_code[iteration.id] = code
        return iteration, code

    def _code_executed(self, event: CodeExecuted) -> None:
        found = self._code_node(event.parent_call_id or "", event.ts)
        if found is None:
            return
        iteration, code = found
        del self._open_code[iteration.id]
        code.duration_s = event.duration_s
        code.ended = event.ts
        code.code, code.stdout, code.stderr, code.error = (
            event.code,
            event.stdout,
            event.stderr,
            event.error,
        )
        code.status = "error" if event.error else "ok"
        shown = fmt.preview("; ".join(x.strip() for x in event.code.splitlines() if x.strip()), 50)
        if event.error:
            lines = event.error.strip().splitlines()
            code.detail = f"{shown} → {fmt.preview(lines[-1] if lines else '', 60)}"
        else:
            out = fmt.preview(event.stdout, 40) or "(no output)"
            code.detail = f"{shown} → {out}"
        iteration.ended = event.ts

    def _sub_started(self, event: SubCallStarted) -> None:
        found = self._code_node(event.parent_call_id or "", event.ts)
        node = Node(
            id=event.call_id,
            kind="sub",
            title=f"{event.sub_kind}_query",
            detail=f'"{fmt.preview(event.prompt, 40)}"',
            started=event.ts,
        )
        self._nodes[node.id] = node
        if found is not None:
            found[1].children.append(node)
        elif event.parent_call_id in self._nodes:
            self._nodes[event.parent_call_id].children.append(node)

    def _tool_called(self, event: ToolCalled) -> None:
        """A tool call: a finished node under the code block that made it."""
        outcome = "ok" if event.ok else fmt.preview(event.error, 60)
        node = Node(
            id=event.call_id,
            kind="sub",
            title=f"tools.{event.tool}",
            detail=f"{event.version or '?'} → {outcome}",
            started=event.ts - event.duration_s,
            status="ok" if event.ok else "error",
            duration_s=event.duration_s,
            ended=event.ts,
        )
        self._nodes[node.id] = node
        found = self._code_node(event.parent_call_id or "", event.ts)
        if found is not None:
            found[1].children.append(node)
        elif event.parent_call_id in self._nodes:
            self._nodes[event.parent_call_id].children.append(node)

    def _note(self, parent: Node, status: Status, title: str, text: str) -> None:
        parent.children.append(
            Node(
                id=f"{parent.id}#note{len(parent.children)}",
                kind="note",
                title=title,
                detail=text,
                status=status,
            )
        )

    def _run_finished(self, event: RunFinished) -> None:
        run = self._nodes.get(event.call_id)
        if run is None:
            return
        cut: set[str] = set()
        for node in run.walk():
            if node is run or node.status != "running" or node.kind == "iteration":
                continue
            node.status = "error"  # cancelled (Ctrl-C) or lost
            node.detail = (node.detail + " (did not finish)").strip()
            cut.add(node.id)
        for node in run.walk():  # the last iteration of each run is still open
            if node.kind == "iteration" and node.status == "running":
                node.status = "error" if any(d.id in cut for d in node.walk()) else "ok"
        self._finish_iteration(run.id)
        run.ended = event.ts
        run.answer = event.answer if event.answer is not None else run.answer
        run.stop_reason = event.stop_reason
        if event.stop_reason == "error":
            run.status = "error"
        else:
            run.status = "partial" if event.partial else "ok"
        if run.answer is not None:
            label = "answer" if not event.partial else f"partial answer ({event.stop_reason})"
            self._note(run, run.status, label, fmt.preview(run.answer, 200))

    # -- reading -------------------------------------------------------------------
    def usage(self, node: Node) -> Usage:
        if node.kind == "run":
            return self.ledger.usage(node.id)
        total = Usage()
        for below in node.walk():
            if below.kind == "model" and below.status == "ok":
                total.input_tokens += below.input_tokens
                total.output_tokens += below.output_tokens
                total.cost_usd += below.cost_usd
                total.model_calls += 1
        return total

    def elapsed(self, node: Node, now: float) -> float | None:
        if node.duration_s is not None:
            return node.duration_s
        if node.started is None:
            return None
        if node.kind == "run":
            wall = self.ledger.usage(node.id).wall_time_s
            if wall:
                return wall
        if node.kind == "iteration" and node.status != "running":
            return (node.ended or node.started) - node.started
        if node.status != "running":
            return None
        return max(now - node.started, 0.0)


def node_stats(kind: NodeKind, usage: Usage, seconds: float | None) -> str:
    """The numbers shown on a node: tokens (in / out for a model call), cost, time."""
    stats: list[str] = []
    if kind == "model" and usage.model_calls:
        stats.append(f"in {usage.input_tokens:,} / out {usage.output_tokens:,} tok")
    elif usage.total_tokens or kind == "run":
        stats.append(fmt.tokens(usage.total_tokens))
    if usage.model_calls or kind == "run":
        stats.append(fmt.cost(usage.cost_usd))
    stats.append(fmt.duration(seconds))
    return " · ".join(stats)
