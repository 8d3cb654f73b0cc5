"""`rlm logs`: past runs from their trajectory files, as a table or as a call tree."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError
from rlmrt.observe import format as fmt

if TYPE_CHECKING:
    from rlmrt.events import Event
    from rlmrt.observe.summary import RunSummary
    from rlmrt.observe.trajectory import RunFile

STAMP_CHARS = len("20250101-120000")  # the time part of a run id
WIDE_TABLE = 110  # narrower consoles drop the local start time (the run id has it in UTC)


def logs(
    run_id: Annotated[
        str | None,
        typer.Argument(help="A run id or a unique part of it: show that run as a tree."),
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Trajectory folder (default: trajectory_dir of the settings).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs to list.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
    project: opt.ProjectName = None,
) -> None:
    """List past runs, newest first, or show one run as a tree of calls."""
    from rlmrt.errors import UsageError
    from rlmrt.observe.trajectory import find_run, list_runs

    if folder is None:
        folder = opt.load_settings(None, {}, project).trajectory.dir
    if run_id is None:
        _print_list(_newest(list_runs(folder), limit), folder, as_json=as_json)
        return
    if not list_runs(folder):
        raise CLIUsageError(f"no runs in {folder}", hint="--dir names another folder")
    try:
        found = find_run(folder, run_id)
    except UsageError as exc:
        raise CLIUsageError(str(exc), hint="`rlm logs` lists the runs") from exc
    from rlmrt.observe.summary import read_summary

    # the JSON has every event whole; the tree shows previews, read skimmed
    events, summary = read_summary(found.path, run_id=found.run_id, skim=not as_json)
    if as_json:
        print(
            json.dumps(
                {"run": summary.to_dict(), "events": [e.to_dict() for e in events]},
                ensure_ascii=False,
                default=str,
            )
        )
        return
    _print_tree(summary, events)


def _newest(files: list[RunFile], limit: int) -> list[RunSummary]:
    """The `limit` newest runs. Run ids name the second only, so runs started in the
    same second are ordered by their first event."""
    chosen = files[:limit]
    if chosen:
        edge = chosen[-1].run_id[:STAMP_CHARS]
        chosen += [f for f in files[limit:] if f.run_id[:STAMP_CHARS] == edge]
    from rlmrt.observe.summary import summary_of

    runs = [summary_of(f.path, run_id=f.run_id) for f in chosen]
    runs.sort(key=lambda r: (r.run_id[:STAMP_CHARS], r.started or 0.0), reverse=True)
    return runs[:limit]


def _when(ts: float | None, *, short: bool = False) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")


def _print_list(runs: list[RunSummary], folder: Path, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_dict() for r in runs], ensure_ascii=False))
        return
    console = Console()
    if not runs:
        console.print(f"no runs in {folder}", markup=False, highlight=False)
        return
    wide = console.width >= WIDE_TABLE
    fixed = {  # column -> cells, sized to their content; prompt and answer share the rest
        "run id": [r.run_id for r in runs],
        **({"started": [_when(r.started, short=True) for r in runs]} if wide else {}),
        "status": [r.status_text() if wide else r.status for r in runs],
        "calls": [str(r.model_calls) for r in runs],
        "tokens": [f"{r.total_tokens:,}" for r in runs],
        "cost": [fmt.cost(r.cost_usd) for r in runs],
        "wall": [fmt.duration(r.wall_time_s) for r in runs],
    }
    used = sum(max(len(name), *map(len, cells)) for name, cells in fixed.items())
    free = console.width - used - 2 * (len(fixed) + 1)
    prompt_width = max(6, min(60, free * 3 // 5))
    answer_width = max(6, min(60, free - prompt_width))
    table = Table(title=f"runs in {folder}", title_justify="left", box=None, pad_edge=False)
    names = list(fixed)
    split = 2 if wide else 1
    order = [*names[:split], "prompt", "answer", *names[split:]]
    for name in order:
        right = name in ("calls", "tokens", "cost", "wall")
        table.add_column(name, no_wrap=True, justify="right" if right else "left")
    for index, r in enumerate(runs):
        row = {name: cells[index] for name, cells in fixed.items()}
        row["prompt"] = fmt.preview(r.prompt, prompt_width)
        row["answer"] = fmt.preview(r.answer, answer_width) if r.answer is not None else "-"
        table.add_row(*(row[name] for name in order))
    console.print(table)


def _print_tree(summary: RunSummary, events: list[Event]) -> None:
    from rich.text import Text

    from rlmrt.cli.calltree import render_tree
    from rlmrt.observe.calltree import CallTree

    console = Console()
    header = Text.assemble(
        ("run ", "bold"),
        (summary.run_id, "bold cyan"),
        f"  {_when(summary.started)}  {summary.model}  {summary.status_text()}\n",
        ("file ", "dim"),
        (str(summary.path), "dim"),
    )
    console.print(header)
    if summary.status == "unfinished":
        console.print(
            Text(
                "the run has not finished (still running, or its process was killed)",
                style="yellow",
            )
        )
    console.print(render_tree(CallTree.of(events)))
