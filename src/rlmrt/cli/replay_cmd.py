"""`rlm replay`: re-run a recorded run, with its recorded replies or on another model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import EXIT_RUN_ERROR
from rlmrt.cli.run_cmd import _read_context

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig
    from rlmrt.engine.replay import Recording, ReplayReport

PREVIEW = 300


def replay(
    run_id: Annotated[
        str, typer.Argument(help="The run's id (or a unique prefix or suffix).", show_default=False)
    ],
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="The run's context again (repeatable; `-` reads stdin): the recording "
            "holds only its metadata.",
            show_default=False,
        ),
    ] = None,
    session_context: Annotated[
        list[str] | None,
        typer.Option(
            "--session-context",
            help="For a run made in a session: the contexts its session's completions "
            "added (context_1, context_2, ... in order; repeatable, one path each).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Re-run the prompt on this model (a normal run) and compare the answers.",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Folder of trajectory files (default: trajectory_dir).", file_okay=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the comparison.")
    ] = False,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
) -> None:
    """Replay RUN_ID: its code runs again with the recorded model replies, and every
    output that differs is shown (exit 1 if any). With --model, run it on that model.

    A run made in a session is replayed after the session's earlier runs (from the same
    folder), which rebuild its REPL state."""
    from rlmrt.engine.replay import Recording
    from rlmrt.observe.trajectory import find_run

    config = opt.load_settings(config_file, {"trajectory_dir": directory}, project)
    found = find_run(config.trajectory.dir, run_id)
    recording = Recording.read(found.path)
    recording.earlier_runs()  # a missing earlier trajectory is named before any work
    _warn_changed_tools(recording)
    encoding = config.input.encoding
    value = recording.check_context(_read_context(context or [], encoding), config.input)
    added = recording.check_session_contexts(
        [_read_context([p], encoding) for p in session_context or []], config.input
    )
    if model is not None:
        _compare_models(recording, value, list(added.values()), config, model, as_json=as_json)
        return
    from rlmrt.engine.replay import replay_run

    report = replay_run(found.path, value, config=config, session_contexts=list(added.values()))
    _print_report(report, as_json=as_json)
    if not report.identical:
        raise typer.Exit(EXIT_RUN_ERROR)


def _warn_changed_tools(recording: Recording) -> None:
    """A warning on stderr per tool the run offered that is installed otherwise now."""
    if not recording.root.tools:
        return
    from rlmrt.tools import changed_tools

    for line in changed_tools(recording.root.tools):
        print(f"warning: {line}", file=sys.stderr)


def _print_report(report: ReplayReport, *, as_json: bool) -> None:
    if as_json:
        data = {
            "run_id": report.run_id,
            "session_runs": report.session_runs,
            "identical": report.identical,
            "executions": report.executions,
            "recorded_answer": report.recorded_answer,
            "replayed_answer": report.replayed_answer,
            "differences": [
                {
                    "run_id": d.run_id,
                    "prompt": d.prompt,
                    "depth": d.depth,
                    "index": d.index,
                    "field": d.field,
                    "code": d.code,
                    "recorded": d.recorded,
                    "replayed": d.replayed,
                }
                for d in report.differences
            ],
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    if report.session_runs:
        print(
            f"rebuilt the session's REPL state: replayed {len(report.session_runs)} earlier "
            f"run(s) ({', '.join(report.session_runs)})"
        )
    for d in report.differences:
        where = f"run {d.run_id}, " if d.run_id != report.run_id else ""
        print(
            f"difference in {d.field} of execution {d.index} ({where}depth {d.depth}, "
            f"{d.prompt!r}):"
        )
        print(f"  code:     {_short(d.code)}")
        print(f"  recorded: {_short(d.recorded)}")
        print(f"  replayed: {_short(d.replayed)}")
    if report.recorded_answer != report.replayed_answer:
        print(f"answer recorded: {_short(report.recorded_answer)}")
        print(f"answer replayed: {_short(report.replayed_answer)}")
    verdict = "identical" if report.identical else f"{len(report.differences)} difference(s)"
    print(f"replayed {report.run_id}: {report.executions} code execution(s), {verdict}")


def _compare_models(
    recording: Recording,
    value: Any,
    added: list[Any],
    config: RLMConfig,
    model: str,
    *,
    as_json: bool,
) -> None:
    from rlmrt.engine.replay import rerun_on_model

    result = rerun_on_model(
        recording.path, value, model=model, config=config, session_contexts=added
    )
    finished = recording.finished
    old_usage: dict[str, Any] = finished.usage if finished else {}
    new_usage = result.usage.to_dict()
    if as_json:
        data = {
            "prompt": recording.root.prompt,
            "recorded": {
                "run_id": recording.root.run_id,
                "model": recording.root.model,
                "answer": finished.answer if finished else None,
                "usage": old_usage,
            },
            "replayed": {
                "run_id": result.run_id,
                "model": model,
                "answer": result.answer,
                "usage": new_usage,
            },
        }
        print(json.dumps(data, ensure_ascii=False, default=str))
        return
    table = Table(title=f"Prompt: {_short(recording.root.prompt, 80)}")
    table.add_column("")
    table.add_column(f"recorded ({recording.root.model})", overflow="fold")
    table.add_column(f"replayed ({model})", overflow="fold")
    table.add_row("answer", _short(finished.answer if finished else None), _short(result.answer))
    for name in ("model_calls", "input_tokens", "output_tokens", "cost_usd"):
        table.add_row(name, str(old_usage.get(name, "?")), str(new_usage.get(name, "?")))
    table.add_row("run id", recording.root.run_id, result.run_id)
    Console(width=120).print(table)


def _short(text: str | None, limit: int = PREVIEW) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= limit else text[:limit] + "…"
