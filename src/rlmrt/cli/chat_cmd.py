"""`rlm chat`: a session from the command line, one prompt per line of stdin."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli.run_cmd import _read_context

EXIT_COMMANDS = frozenset({"/exit", "/quit"})


@opt.setting_flags
def chat(
    context: Annotated[
        list[str] | None,
        typer.Option(
            "--context",
            "-c",
            help="File or folder to load as `context` (repeatable).",
            show_default=False,
        ),
    ] = None,
    config_file: opt.ConfigFile = None,
    project: opt.ProjectName = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """Ask questions one line at a time over one context; the REPL keeps its
    variables between questions (`history` holds the earlier answers). End with
    /exit or end of input. Each question is a run of its own, with its own budgets."""
    config = opt.load_settings(config_file, settings or {}, project)
    if "-" in (context or []):
        raise typer.BadParameter("stdin holds the prompts in `rlm chat`", param_hint="--context")
    value = _read_context(context or [], config.input.encoding)

    from rlmrt.engine.rlm import RLM

    interactive = sys.stdin.isatty()
    with RLM(config=config) as rlm, rlm.session(context=value) as session:
        while True:
            if interactive:
                print("> ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            prompt = line.strip()
            if prompt in EXIT_COMMANDS:
                break
            if not prompt:
                continue
            result = session.completion(prompt)
            print(result.answer if result.answer is not None else "(no answer)", flush=True)
            if result.partial:
                print(
                    f"note: partial answer (the run stopped at {result.stop_reason})",
                    file=sys.stderr,
                )
