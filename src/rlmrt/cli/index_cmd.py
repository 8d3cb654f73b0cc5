"""`rlm index` and `rlm search`: the local context index of a project folder."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from rlmrt.cli import _options as opt

if TYPE_CHECKING:
    from rlmrt.context.local_index import IndexStats, LocalIndex

PathArg = Annotated[
    Path | None,
    typer.Argument(
        help="The folder to index (default: the project's root, else context_root of the"
        " settings, else the working folder).",
        show_default=False,
    ),
]
JsonOpt = opt.JsonOpt
ProjectOpt = opt.ProjectName


def _open(path: Path | None, project: str | None) -> LocalIndex:
    """The index of `path`, or the settings' (the active project's) folder and index."""
    from rlmrt.context.local_index import LocalIndex

    if path is not None:
        return LocalIndex(path)
    config = opt.load_settings(None, {}, project)
    return LocalIndex(config.context.root or Path.cwd(), index_path=config.context.index)


def _refresh(
    path: Path | None, project: str | None, *, rebuild: bool, console: Console
) -> tuple[LocalIndex, IndexStats]:
    index = _open(path, project)
    if not console.is_terminal:
        return index, index.refresh(rebuild=rebuild)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("indexing", total=None)
        stats = index.refresh(
            rebuild=rebuild,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    return index, stats


def index(
    path: PathArg = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Drop the index and build it anew.")
    ] = False,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Build or refresh the local search index of a folder (only changed files are read)."""
    idx, stats = _refresh(path, project, rebuild=rebuild, console=Console(stderr=True))
    idx.close()
    if as_json:
        print(json.dumps({"root": str(idx.root), "index": str(idx.index_path), **asdict(stats)}))
        return
    print(
        f"indexed {idx.root}: {stats.added} added, {stats.updated} updated,"
        f" {stats.removed} removed, {stats.unchanged} unchanged, {stats.skipped} skipped"
        f" ({stats.chunks} chunks) in {stats.seconds:.2f} s"
    )
    print(f"index: {idx.index_path}")


def search(
    query: Annotated[str, typer.Argument(help="What to look for (free text).", show_default=False)],
    path: PathArg = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="Token budget of all hits together.")
    ] = 2000,
    as_json: JsonOpt = False,
    project: ProjectOpt = None,
) -> None:
    """Search a folder's local index (refreshed first) and print the hits with file:lines."""
    from rlmrt.context.local_index import fts_query

    fts_query(query)  # an empty query fails before any indexing
    idx, _ = _refresh(path, project, rebuild=False, console=Console(stderr=True))
    try:
        hits = idx.search_sync(query, max_tokens=max_tokens)
    finally:
        idx.close()
    if as_json:
        data = {
            "query": query,
            "root": str(idx.root),
            "tokens": sum(h.tokens for h in hits),
            "hits": [asdict(h) for h in hits],
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    console = Console()
    if not hits:
        console.print(f"no matches for {query!r}", markup=False, highlight=False)
        return
    for hit in hits:
        head = f"{hit.source}:{hit.start_line}-{hit.end_line}"
        title = f"  {hit.title}" if hit.title else ""
        console.rule(style="dim")
        console.print(
            f"{head}{title}  (score {hit.score:.2f}, ~{hit.tokens} tokens)",
            style="bold",
            markup=False,
            highlight=False,
        )
        console.print(hit.text, markup=False, highlight=False, soft_wrap=True)
