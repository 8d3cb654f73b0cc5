"""`rlm run`: one RLM run from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import EXIT_PARTIAL, EXIT_RUN_ERROR, CLIUsageError, fail

if TYPE_CHECKING:
    from rlmrt.engine.rlm import RLM, RunResult
    from rlmrt.events import EventHandler

STDIN = "-"


@opt.setting_flags
def run(
    prompt: Annotated[str, typer.Argument(help="What to ask.", show_default=False)],
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="File or folder to load as `context` (repeatable; `-` reads stdin).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the result on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    output_schema: Annotated[
        Path | None,
        typer.Option(
            "--output-schema",
            help="JSON Schema file the answer must fit; the answer is checked and printed as JSON.",
            show_default=False,
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Run PROMPT over the context; the answer goes to stdout, progress to stderr."""
    config = opt.load_settings(config_file, settings or {}, project)
    value = _read_context(context or [], config.input.encoding)
    schema = _read_schema(output_schema) if output_schema is not None else None

    from rlmrt.engine.rlm import RLM
    from rlmrt.local.default import local_default_reason

    reason = local_default_reason(config)
    if reason is not None:
        from rlmrt.local.catalog import DEFAULT_LOCAL_MODEL

        print(f"rlm: using the local model {DEFAULT_LOCAL_MODEL} ({reason})", file=sys.stderr)
    rlm = RLM(config=config)
    result = _execute(rlm, prompt, value, quiet=quiet, output_type=schema)
    _report(result, as_json=as_json)


def _read_schema(path: Path) -> dict[str, Any]:
    """The `--output-schema` file's JSON Schema, or a usage error naming the file."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CLIUsageError(f"cannot read --output-schema {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CLIUsageError(f"--output-schema {path} is not JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise CLIUsageError(f"--output-schema {path} must hold a JSON object (a JSON Schema)")
    return schema


def _read_context(paths: list[str], encoding: str) -> Any:
    """None, stdin text (bytes when it does not decode), one Path, or a list of Paths
    (the engine loads those)."""
    if not paths:
        return None
    if STDIN in paths:
        if len(paths) > 1:
            raise CLIUsageError(
                "`--context -` (stdin) cannot be combined with other --context paths",
                hint="save stdin to a file, or put the files in one folder",
            )
        if sys.stdin.isatty():
            print("reading the context from stdin (end with Ctrl-D)…", file=sys.stderr)
        data = sys.stdin.buffer.read()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            return data
    if len(paths) == 1:
        return Path(paths[0])
    return [Path(p) for p in paths]


def _execute(
    rlm: RLM, prompt: str, context: Any, *, quiet: bool, output_type: object = None
) -> RunResult:
    from rlmrt.cli.live import LiveTree, PlainProgress

    console = Console(stderr=True)
    progress: LiveTree | PlainProgress | None = None
    if not quiet:
        progress = LiveTree(console) if console.is_terminal else PlainProgress()

    handler: EventHandler | None = progress

    async def main() -> RunResult:
        try:
            return await rlm.acompletion(prompt, context, on_event=handler, output_type=output_type)
        finally:
            await rlm.aclose()

    if progress is None:
        return asyncio.run(main())
    with progress:
        return asyncio.run(main())


def _report(result: RunResult, *, as_json: bool) -> None:
    if as_json:
        data = {
            "answer": result.answer,
            "partial": result.partial,
            "stop_reason": result.stop_reason,
            "usage": result.usage.to_dict(),
            "run_id": result.run_id,
            "trajectory_path": str(result.trajectory_path) if result.trajectory_path else None,
            "iterations": result.iterations,
        }
        if result.output is not None:
            data["output"] = result.output
        print(json.dumps(data, ensure_ascii=False))
    elif result.answer is not None:
        print(result.answer)
    if result.answer is None:
        raise fail(
            f"the run stopped ({result.stop_reason}) without an answer",
            hint=f"`rlm logs {result.run_id}` shows what happened",
            code=EXIT_RUN_ERROR,
        )
    if result.stop_reason == "invalid_output":
        print(
            "note: the answer does not fit --output-schema; the run stopped after the "
            "allowed corrections (`rlm logs` shows each misfit)",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_PARTIAL)
    if result.partial:
        print(
            f"note: the answer is partial: the run stopped at a limit ({result.stop_reason}) "
            "and answered from what it had found",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_PARTIAL)
