"""What the visualizer shows of one run, computed from its call tree.

- `tree_rows`: the recursion tree (run → iteration → model call, code → sub-call →
  model call | child run) as rows with tokens, cost and time for every node.
- `timeline`: one bar per model call, code execution, sub-call and child run, in
  seconds since the run started, so concurrent calls show as overlapping bars; `peak`
  counts how many overlapped at most.
- `run_nodes` / `iterations`: each run node's iterations with the model's reply and
  every code block's code and output, in full.

Times of nodes still running extend to `now` (the last event's time by default, right
for a finished or killed run).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rlmrt.observe.calltree import CallTree, Node, NodeKind, Status


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeRow:
    id: str
    level: int  # nesting in the tree, 0 for the root run
    kind: NodeKind
    title: str
    detail: str
    status: Status
    input_tokens: int
    output_tokens: int
    model_calls: int
    cost_usd: float
    seconds: float | None
    start_s: float | None  # since the root run started
    has_children: bool

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One call on the timeline."""

    id: str
    kind: str  # "run", "model", "code", "llm_query", "rlm_query"
    label: str
    depth: int  # of the run the call belongs to
    start_s: float
    end_s: float
    status: Status

    def overlaps(self, other: Bar) -> bool:
        return self.start_s < other.end_s and other.start_s < self.end_s


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeView:
    code: str
    stdout: str
    stderr: str
    error: str | None
    seconds: float | None
    sub_calls: list[TreeRow]


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationView:
    number: int
    status: Status
    reply: str  # the model's reply that started the iteration
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    seconds: float | None
    code: list[CodeView] = field(default_factory=list)


def _clock(tree: CallTree, now: float | None) -> tuple[float, float]:
    """(the moment the views are drawn at, the run's start): times are shown from it."""
    moment = now if now is not None else (tree.last_ts or 0.0)
    origin = tree.root.started if tree.root is not None and tree.root.started else 0.0
    return moment, origin


def tree_rows(tree: CallTree, *, now: float | None = None) -> list[TreeRow]:
    """Every node of the tree, depth first, with its numbers."""
    with tree.lock:
        root = tree.root
        if root is None:
            return []
        moment, origin = _clock(tree, now)
        rows: list[TreeRow] = []

        def visit(node: Node, level: int) -> None:
            rows.append(_row(tree, node, level, moment, origin))
            for child in node.children:
                visit(child, level + 1)

        visit(root, 0)
        return rows


def _row(tree: CallTree, node: Node, level: int, now: float, origin: float) -> TreeRow:
    usage = tree.usage(node)
    return TreeRow(
        id=node.id,
        level=level,
        kind=node.kind,
        title=node.title,
        detail=node.detail,
        status=node.status,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        model_calls=usage.model_calls,
        cost_usd=usage.cost_usd,
        seconds=None if node.kind == "note" else tree.elapsed(node, now),
        start_s=None if node.started is None else node.started - origin,
        has_children=bool(node.children),
    )


def timeline(tree: CallTree, *, now: float | None = None) -> list[Bar]:
    """The calls of the run as bars, ordered by start."""
    with tree.lock:
        root = tree.root
        if root is None:
            return []
        moment, origin = _clock(tree, now)
        bars: list[Bar] = []
        _collect(tree, root, root, moment, origin, bars)
    bars.sort(key=lambda b: (b.start_s, b.depth, b.id))
    return bars


def _collect(
    tree: CallTree, node: Node, run: Node, now: float, origin: float, bars: list[Bar]
) -> None:
    if node.kind == "run":
        run = node
    bar = _bar(tree, node, run, now, origin)
    if bar is not None:
        bars.append(bar)
    for child in node.children:
        _collect(tree, child, run, now, origin, bars)


def _bar(tree: CallTree, node: Node, run: Node, now: float, origin: float) -> Bar | None:
    if node.kind in ("iteration", "note") or node.started is None:
        return None
    seconds = tree.elapsed(node, now) or 0.0
    start = node.started
    if node.kind == "code" and node.ended is not None and node.duration_s is not None:
        start = node.ended - node.duration_s  # the block started when its model call ended
    depth = run.depth
    kind = node.title if node.kind == "sub" else node.kind
    if node.kind == "run":
        label = f"{node.title}: {node.prompt}"
    elif node.kind == "sub":
        label = f"{node.title} {node.detail}"
    else:
        label = f"{node.title} (depth {depth})"
    return Bar(
        id=node.id,
        kind=kind,
        label=label,
        depth=depth,
        start_s=max(start - origin, 0.0),
        end_s=max(start - origin, 0.0) + seconds,
        status=node.status,
    )


def peak(bars: Iterable[Bar], kind: str = "model") -> int:
    """The most bars of `kind` that overlapped at one moment (a sweep over the edges)."""
    edges: list[tuple[float, int]] = []
    for bar in bars:
        if bar.kind == kind:
            edges += [(bar.start_s, 1), (bar.end_s, -1)]
    edges.sort()  # at equal times an end (-1) sorts before a start: touching is no overlap
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best


def run_nodes(tree: CallTree) -> list[Node]:
    """The root run and every child run, depth first."""
    with tree.lock:
        if tree.root is None:
            return []
        return [n for n in tree.root.walk() if n.kind == "run"]


def iterations(tree: CallTree, run: Node, *, now: float | None = None) -> list[IterationView]:
    """Each iteration of `run`: the model's reply, then every code block it ran."""
    with tree.lock:
        moment, origin = _clock(tree, now)
        views: list[IterationView] = []
        for number, step in enumerate((c for c in run.children if c.kind == "iteration"), 1):
            model = next((c for c in step.children if c.kind == "model"), None)
            usage = tree.usage(model) if model is not None else tree.usage(step)
            blocks = [
                CodeView(
                    code=c.code,
                    stdout=c.stdout,
                    stderr=c.stderr,
                    error=c.error,
                    seconds=c.duration_s,
                    sub_calls=[
                        _row(tree, s, 0, moment, origin) for s in c.children if s.kind == "sub"
                    ],
                )
                for c in step.children
                if c.kind == "code"
            ]
            views.append(
                IterationView(
                    number=number,
                    status=step.status,
                    reply=model.response if model is not None else "",
                    model=model.title if model is not None else "",
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=usage.cost_usd,
                    seconds=tree.elapsed(step, moment),
                    code=blocks,
                )
            )
        return views
