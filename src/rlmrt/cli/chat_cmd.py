"""`rlm chat`: a session from the command line, one prompt per line of stdin."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli.run_cmd import _read_context

EXIT_COMMANDS = frozenset({"/exit", "/quit"})


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
    model: opt.Model = None,
    sub_model: opt.SubModel = None,
    api_base: opt.ApiBase = None,
    api_key: opt.ApiKey = None,
    sandbox: opt.Sandbox = None,
    max_depth: opt.MaxDepth = None,
    max_iterations: opt.MaxIterations = None,
    max_cost: opt.MaxCost = None,
    timeout: opt.Timeout = None,
    trajectory_dir: opt.TrajectoryDir = None,
    project: opt.ProjectName = None,
) -> None:
    """Ask questions one line at a time over one context; the REPL keeps its
    variables between questions (`history` holds the earlier answers). End with
    /exit or end of input. Each question is a run of its own, with its own budgets."""
    config = opt.load_settings(
        config_file,
        opt.model_flags(
            model=model,
            sub_model=sub_model,
            api_base=api_base,
            api_key=api_key,
            sandbox=sandbox,
            max_depth=max_depth,
            max_iterations=max_iterations,
            max_cost=max_cost,
            timeout=timeout,
            trajectory_dir=trajectory_dir,
        ),
        project,
    )
    if "-" in (context or []):
        raise typer.BadParameter("stdin holds the prompts in `rlm chat`", param_hint="--context")
    value = _read_context(context or [])

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
