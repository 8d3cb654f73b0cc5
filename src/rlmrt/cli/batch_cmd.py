"""`rlm batch`: one RLM run per record of a JSONL dataset, resumable, with a summary."""

from __future__ import annotations

import asyncio
import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import EXIT_RUN_ERROR, CLIUsageError, fail

if TYPE_CHECKING:
    from rlmrt.batch import BatchSummary, RecordResult


@opt.setting_flags
def batch(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="JSONL file: one {id, prompt, context | context_path, expected} per line.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Results JSONL; records already in it are skipped (resume).",
            show_default=False,
        ),
    ],
    executor: Annotated[
        str, typer.Option("--executor", help="local (this process) or ray.")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="A Ray cluster to run on (implies --executor ray; default: a local Ray).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=1024, help="Records running at once.")
    ] = 4,
    total_budget_usd: Annotated[
        float | None,
        typer.Option(
            "--total-budget-usd",
            min=0,
            help="Start no record once the batch has spent this much.",
            show_default=False,
        ),
    ] = None,
    total_budget_tokens: Annotated[
        int | None,
        typer.Option(
            "--total-budget-tokens",
            min=1,
            help="Start no record once the batch has used this many tokens.",
            show_default=False,
        ),
    ] = None,
    match: Annotated[
        str,
        typer.Option("--match", help="Scoring: exact (normalized) or contains (a whole token)."),
    ] = "exact",
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback/--no-feedback",
            help="Judge each scored run good or bad in the project's memory (for learning).",
        ),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Run every record of DATASET not already in --out; each run's settings are the
    usual ones (its budget bounds each record)."""
    if executor not in ("local", "ray"):
        raise CLIUsageError(f"--executor must be local or ray, got {executor!r}")
    if match not in ("exact", "contains"):
        raise CLIUsageError(f"--match must be exact or contains, got {match!r}")
    config = opt.load_settings(config_file, settings or {}, project)

    from rlmrt.batch import BatchLimits, abatch

    limits = BatchLimits(
        concurrency=concurrency,
        total_budget_usd=total_budget_usd,
        total_budget_tokens=total_budget_tokens,
        match=match,  # type: ignore[arg-type]
        feedback=feedback,
    )
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )
    task = progress.add_task("batch", total=None, status="")

    def on_result(result: RecordResult, summary: BatchSummary) -> None:
        done = summary.ran + summary.already_done
        progress.update(task, total=summary.total, completed=done, status=_status(summary))

    with progress:
        summary = asyncio.run(
            abatch(
                dataset,
                out,
                config=config,
                executor="ray" if ray_address else executor,  # type: ignore[arg-type]
                ray_address=ray_address,
                limits=limits,
                on_result=on_result,
            )
        )
    if as_json:
        print(json.dumps(summary_dict(summary, out)))
    else:
        Console().print(_table(summary, out))
    if summary.ran and summary.errors == summary.ran:
        raise fail(
            "every record that ran failed", hint=f"see the errors in {out}", code=EXIT_RUN_ERROR
        )


def _status(summary: BatchSummary) -> str:
    parts = []
    if summary.scored:
        parts.append(f"{summary.correct}/{summary.scored} right")
    if summary.errors:
        parts.append(f"{summary.errors} errors")
    return ", ".join(parts)


def summary_dict(summary: BatchSummary, out: Path) -> dict[str, Any]:
    """The summary's counts and totals (not its per-record results), with `accuracy`."""
    data = {f.name: getattr(summary, f.name) for f in fields(summary) if f.name != "results"}
    data["cost_usd"] = round(summary.cost_usd, 8)
    data["wall_time_s"] = round(summary.wall_time_s, 3)
    return {**data, "accuracy": summary.accuracy, "out": str(out)}


def _table(summary: BatchSummary, out: Path) -> Table:
    table = Table(title=f"batch: {out}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("records", f"{summary.total}"),
        ("ran now", f"{summary.ran}"),
        ("already in --out", f"{summary.already_done}"),
        ("errors", f"{summary.errors}"),
        ("partial answers", f"{summary.partial}"),
    ]
    if summary.accuracy is not None:
        rows.append(("accuracy", f"{summary.correct}/{summary.scored} ({summary.accuracy:.1%})"))
    if summary.not_run:
        rows.append(("not run", f"{summary.not_run} (stopped by {summary.stopped_by})"))
    rows += [
        ("tokens", f"{summary.input_tokens + summary.output_tokens:,}"),
        ("cost", f"${summary.cost_usd:.4f}"),
        ("wall time", f"{summary.wall_time_s:.1f}s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table
