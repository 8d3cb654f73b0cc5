"""`rlm memory` (what the active project remembers) and `rlm feedback` (a verdict on a
run, from which notes are learned)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import CLIUsageError

if TYPE_CHECKING:
    from rlmrt.memory import MemoryItem, MemoryStore

memory_app = typer.Typer(
    name="memory",
    help="What the active project remembers: facts, pinned notes, lessons learned from feedback.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead.")]
KindOpt = Annotated[
    str | None,
    typer.Option("--kind", help="Only this kind: fact, note or lesson.", show_default=False),
]


def _store(config_file: Path | None, project: str | None) -> MemoryStore:
    """The active project's store (a context manager: closed after the command)."""
    from rlmrt.memory import open_memory

    return open_memory(opt.load_settings(config_file, {}, project))


def _kind(kind: str | None) -> str | None:
    from rlmrt.memory import KINDS

    if kind is not None and kind not in KINDS:
        raise CLIUsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def _print(items: list[MemoryItem], as_json: bool, empty: str) -> None:
    if as_json:
        print(json.dumps([item.to_dict() for item in items], ensure_ascii=False))
        return
    if not items:
        print(empty)
        return
    table = Table(title_justify="left")
    for column in ("id", "kind", "pinned", "tags", "text"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            item.id, item.kind, "yes" if item.pinned else "", " ".join(item.tags), item.text
        )
    Console().print(table)


@memory_app.command("add")
def add(
    text: Annotated[str, typer.Argument(help="What to remember.", show_default=False)],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="A tag (repeatable).", show_default=False)
    ] = None,
    kind: Annotated[str, typer.Option("--kind", help="fact, note or lesson.")] = "fact",
    pin: Annotated[
        bool, typer.Option("--pin", help="Add it to every run's first prompt (capped).")
    ] = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Remember TEXT in the active project's memory."""
    with _store(config_file, project) as store:
        item = store.remember(text, tags=tag or [], kind=_kind(kind) or "fact", pinned=pin)  # type: ignore[arg-type]
    print(item.id)


@memory_app.command("list")
def list_items(
    kind: KindOpt = None,
    pinned: Annotated[bool, typer.Option("--pinned", help="Only pinned items.")] = False,
    as_json: JsonOpt = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Every item of the active project's memory, oldest first."""
    with _store(config_file, project) as store:
        items = store.items(kind=_kind(kind), pinned=True if pinned else None)  # type: ignore[arg-type]
    _print(items, as_json, f"nothing remembered yet in {store.path}")


@memory_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Words to look for.", show_default=False)],
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many items.")] = 5,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """The items that best match QUERY (full-text search), best first."""
    with _store(config_file, project) as store:
        items = store.recall(query, k=k, kind=_kind(kind))  # type: ignore[arg-type]
    _print(items, as_json, "no item matches")


@memory_app.command("rm")
def remove(
    item_id: Annotated[str, typer.Argument(help="The item's id (mem-...).", show_default=False)],
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Forget one item."""
    with _store(config_file, project) as store:
        removed = store.forget(item_id)
    if not removed:
        raise CLIUsageError(f"no memory item {item_id!r} in {store.path}")
    print(f"forgot {item_id}")


@memory_app.command("export")
def export(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to this file (default: stdout).", show_default=False
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Every item and every feedback, as one JSON document."""
    with _store(config_file, project) as store:
        data = {
            "items": [item.to_dict() for item in store.items()],
            "feedback": [entry.to_dict() for entry in store.feedback()],
        }
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {len(data['items'])} items and {len(data['feedback'])} feedback to {out}")


@memory_app.command("learn")
@opt.setting_flags
def learn(
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=1000, help="Judged runs to learn from, at most.")
    ] = 50,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Write one lesson per judged run not learned from yet (a model call each: the
    configured model, or the local one)."""
    config = opt.load_settings(config_file, settings or {}, project)

    from rlmrt.engine.rlm import RLM

    with RLM(config=config) as rlm:
        made = rlm.learn(limit=limit)
    for lesson in made.lessons:
        print(f"{lesson.id} ({', '.join(lesson.source_runs)}): {lesson.text}")
    for run_id, why in made.skipped.items():
        print(f"skipped {run_id}: {why}", file=sys.stderr)
    if not made.lessons and not made.skipped:
        print("no judged run to learn from; judge runs with `rlm feedback RUN_ID good|bad`")


def feedback(
    run_id: Annotated[str, typer.Argument(help="The run (or a unique part of its id).")],
    verdict: Annotated[str, typer.Argument(help="good or bad.", show_default=False)],
    note: Annotated[
        str | None, typer.Option("--note", help="Why, in a few words.", show_default=False)
    ] = None,
    expected: Annotated[
        str | None,
        typer.Option(
            "--expected", help="The answer the run should have given.", show_default=False
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Judge a recorded run good or bad; learned notes are distilled from judged runs."""
    if verdict not in ("good", "bad"):
        raise CLIUsageError(f"the verdict is good or bad, got {verdict!r}")
    from rlmrt.memory import give_feedback

    config = opt.load_settings(config_file, {}, project)
    given = give_feedback(config, run_id, verdict, note=note, expected=expected)  # type: ignore[arg-type]
    print(f"{given.run_id}: {given.verdict}")
