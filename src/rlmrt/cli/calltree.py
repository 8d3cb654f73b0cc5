"""The run tree of `rlmrt.observe.calltree`, drawn as a Rich tree (the live view of
`rlm run` and `rlm logs RUN_ID`)."""

from __future__ import annotations

import time

from rich.console import RenderableType
from rich.text import Text
from rich.tree import Tree

from rlmrt.observe.calltree import CallTree, Node, Status, node_stats

_ICONS: dict[Status, tuple[str, str]] = {
    "running": ("…", "yellow"),
    "ok": ("✓", "green"),
    "partial": ("◐", "yellow"),
    "error": ("✗", "red"),
    "warn": ("!", "yellow"),
}


def render_tree(
    tree: CallTree, *, now: float | None = None, collapse_done: bool = False, max_children: int = 0
) -> RenderableType:
    """The tree as a Rich renderable.

    `now` times the nodes still running (default: the last event's time, right for
    a finished or killed run). For the live view, `collapse_done` folds finished
    iterations into one line and `max_children` (0: no limit) keeps only the
    latest children of a busy node (say, a batch of 100 sub-calls) on screen.
    """
    with tree.lock:
        if tree.root is None:
            return Text("waiting for the run to start…", style="dim")
        moment = now if now is not None else (tree.last_ts or time.time())
        drawn = Tree(_label(tree, tree.root, moment), guide_style="dim")
        _add_children(tree, drawn, tree.root, moment, collapse_done, max_children)
        return drawn


def _add_children(
    tree: CallTree, drawn: Tree, node: Node, now: float, collapse: bool, max_children: int
) -> None:
    children = node.children
    if max_children and node.kind != "run" and len(children) > max_children:
        hidden = children[:-max_children]
        counts = {s: sum(c.status == s for c in hidden) for s in ("ok", "running", "error")}
        drawn.add(
            Text(
                f"… {len(hidden)} earlier: {counts['ok']} done, {counts['running']} "
                f"running, {counts['error']} failed",
                style="dim",
            )
        )
        children = children[-max_children:]
    for child in children:
        branch = drawn.add(_label(tree, child, now))
        if collapse and child.kind == "iteration" and child.status != "running":
            continue
        _add_children(tree, branch, child, now, collapse, max_children)


def _label(tree: CallTree, node: Node, now: float) -> Text:
    icon, style = _ICONS[node.status]
    text = Text.assemble((icon + " ", style))
    text.append(node.title, style="bold" if node.kind in ("run", "iteration") else "")
    if node.detail:
        text.append(" " + node.detail, style="red" if node.status == "error" else "dim")
    if node.kind == "note":
        return text
    numbers = node_stats(node.kind, tree.usage(node), tree.elapsed(node, now))
    text.append("  " + numbers, style="cyan")
    return text
