"""`rlm costs`: what runs cost, from their trajectory files, as a table with bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError

if TYPE_CHECKING:
    from rlmrt.observe.costs import CostRow, GroupBy

BAR_WIDTH = 40
BAR_ROWS = 20


def costs(
    project: opt.ProjectName = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only calls from then on: 7d, 12h, 30m, 2w ago or a date (2025-01-31, UTC).",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="Group by model, day (UTC), project or run.")
    ] = "model",
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Read this trajectory folder only (default: every project's runs, or"
            " --project's).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Tokens and USD of recorded runs, per model, day, project or run."""
    from rlmrt.errors import UsageError
    from rlmrt.observe.costs import GROUPS, call_costs, group_costs, parse_since

    if by not in GROUPS:
        raise CLIUsageError(f"unknown --by {by!r}", hint=f"use one of: {', '.join(GROUPS)}")
    try:
        start = parse_since(since) if since is not None else None
    except UsageError as exc:
        raise CLIUsageError(str(exc)) from exc
    if folder is not None:
        folders = {project or "": folder}
    elif project is not None:
        folders = {project: opt.load_settings(None, {}, project).trajectory.dir}
    else:
        from rlmrt.projects import run_folders

        folders = run_folders()
    rows = group_costs(call_costs(folders, since=start), by)
    if as_json:
        total = sum(r.cost_usd for r in rows)
        print(json.dumps({"by": by, "total_usd": total, "rows": [r.to_dict() for r in rows]}))
        return
    _print_table(rows, by)


def _print_table(rows: list[CostRow], by: GroupBy) -> None:
    console = Console()
    if not rows:
        console.print("no model calls recorded", highlight=False)
        return
    table = Table(show_edge=False)
    table.add_column(by, overflow="fold")
    # the parts providers report (prompt cache, reasoning): shown when any call had them
    parts = [
        (name, field)
        for name, field in (
            ("cache read", "cache_read_tokens"),
            ("cache write", "cache_write_tokens"),
            ("reasoning", "reasoning_tokens"),
        )
        if any(getattr(row, field) for row in rows)
    ]
    for name in ("runs", "calls", "in tok", "out tok", *(name for name, _ in parts), "USD"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.key,
            f"{row.runs:,}",
            f"{row.calls:,}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            *(f"{getattr(row, field):,}" for _, field in parts),
            f"{row.cost_usd:.4f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{sum(r.calls for r in rows):,}",
        f"{sum(r.input_tokens for r in rows):,}",
        f"{sum(r.output_tokens for r in rows):,}",
        *(f"{sum(getattr(r, field) for r in rows):,}" for _, field in parts),
        f"{sum(r.cost_usd for r in rows):.4f}",
    )
    console.print(table)
    console.print()
    _print_bars(console, rows)


def _print_bars(console: Console, rows: list[CostRow]) -> None:
    """USD per group as horizontal bars, scaled to the largest."""
    shown = rows[:BAR_ROWS]
    top = max(r.cost_usd for r in shown) or 1.0
    label = min(max(len(r.key) for r in shown), 40)
    width = max(10, min(BAR_WIDTH, console.width - label - 14))
    for row in shown:
        cells = round(width * row.cost_usd / top)
        bar = "█" * (cells or (1 if row.cost_usd > 0 else 0))
        console.print(
            f"{row.key[:label]:<{label}} {bar:<{width}} {row.cost_usd:.4f}",
            markup=False,
            highlight=False,
        )
