"""The visualizer's pictures as plain data: the call tree as HTML, the timeline as a
Vega-Lite spec (drawn by the Vega-Lite bundled in Streamlit's front end: no assets are
fetched from the internet)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from rlmrt.observe.calltree import node_stats
from rlmrt.observe.usage import Usage
from rlmrt.visualize.model import Bar, TreeRow

_ICONS = {
    "running": ("…", "#b58900"),
    "ok": ("✓", "#2e7d32"),
    "partial": ("◐", "#b58900"),
    "error": ("✗", "#c62828"),
    "warn": ("!", "#b58900"),
}

TREE_STYLE = """<style>
.rlm-tree { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;
  overflow: auto; max-height: 640px; }
.rlm-tree details > div { margin-left: 1.2em; border-left: 1px dotted #999; padding-left: .4em; }
.rlm-tree summary, .rlm-tree .leaf { padding: 1px 0; white-space: nowrap; }
.rlm-tree .detail { color: #777; }
.rlm-tree .stats { color: #00838f; margin-left: .6em; }
.rlm-tree .run > summary .title { font-weight: bold; }
</style>"""

MAX_BARS = 400  # bars drawn on the timeline (the earliest ones)


def stats(row: TreeRow) -> str:
    """The numbers of a node: tokens, cost, time."""
    if row.kind == "note":
        return ""
    usage = Usage(row.input_tokens, row.output_tokens, row.model_calls, row.cost_usd)
    return node_stats(row.kind, usage, row.seconds)


def _label(row: TreeRow) -> str:
    icon, colour = _ICONS[row.status]
    detail = f' <span class="detail">{escape(row.detail)}</span>' if row.detail else ""
    numbers = stats(row)
    shown = f' <span class="stats">{escape(numbers)}</span>' if numbers else ""
    return (
        f'<span style="color:{colour}">{icon}</span> '
        f'<span class="title">{escape(row.title)}</span>{detail}{shown}'
    )


def tree_html(rows: Sequence[TreeRow]) -> str:
    """The rows (depth first, with levels) as nested, foldable HTML."""
    out = [TREE_STYLE, '<div class="rlm-tree">']
    open_levels: list[int] = []
    for row in rows:
        while open_levels and open_levels[-1] >= row.level:
            open_levels.pop()
            out.append("</div></details>")
        attrs = f'class="{row.kind}" data-node="{escape(row.id)}"'
        if row.has_children:
            out.append(f"<details open {attrs}><summary>{_label(row)}</summary><div>")
            open_levels.append(row.level)
        else:
            out.append(f'<div {attrs}><span class="leaf">{_label(row)}</span></div>')
    out.extend("</div></details>" for _ in open_levels)
    out.append("</div>")
    return "".join(out)


def timeline_spec(bars: Sequence[Bar]) -> dict[str, Any]:
    """A Gantt chart of the calls: one row per call, x from start to end in seconds."""
    shown = list(bars[:MAX_BARS])
    values = [
        {
            "row": f"{index + 1:>3} {bar.label[:60]}",
            "kind": bar.kind,
            "start": round(bar.start_s, 4),
            "end": round(bar.end_s, 4),
            "seconds": round(bar.end_s - bar.start_s, 4),
            "depth": bar.depth,
            "status": bar.status,
        }
        for index, bar in enumerate(shown)
    ]
    return {
        "data": {"values": values},
        "mark": {"type": "bar", "cornerRadius": 2},
        "height": {"step": 20},
        "encoding": {
            "y": {
                "field": "row",
                "type": "nominal",
                "sort": None,
                "title": None,
                "axis": {"labelLimit": 360, "labelFontSize": 11, "labelOverlap": False},
            },
            "x": {"field": "start", "type": "quantitative", "title": "seconds since start"},
            "x2": {"field": "end"},
            "color": {"field": "kind", "type": "nominal", "title": "call"},
            "tooltip": [
                {"field": "row", "title": "call"},
                {"field": "kind"},
                {"field": "depth"},
                {"field": "start", "title": "start (s)"},
                {"field": "seconds", "title": "duration (s)"},
                {"field": "status"},
            ],
        },
    }
