"""`rlm metrics serve`: Prometheus metrics of the runs of every `rlm` process here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from rlmrt.cli._errors import CLIUsageError

metrics_app = typer.Typer(
    help="Prometheus metrics of runs (rlm_*).", no_args_is_help=True, add_completion=False
)


@metrics_app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", help="Port of /metrics.", min=1, max=65535)] = 9464,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    folder: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Follow only this trajectory folder (default: the runs of RLMRT_HOME and of"
            " every project).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between reads of the folders.", min=0.05)
    ] = 1.0,
) -> None:
    """Serve http://HOST:PORT/metrics, counting the runs that start from now on (read
    from their trajectory files as they are written). Stop with Ctrl-C."""
    from rlmrt.errors import MissingDependencyError

    try:
        from rlmrt.observe.metrics import run_metrics, serve_metrics
    except ImportError as exc:
        raise CLIUsageError(str(MissingDependencyError("prometheus-client", "metrics"))) from exc
    from rlmrt.observe.follow import TrajectoryFollower
    from rlmrt.projects import run_folders

    folders = {"": folder} if folder is not None else run_folders()
    try:
        server, thread = serve_metrics(port, host)
    except OSError as exc:
        raise CLIUsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    metrics = run_metrics()
    follower = TrajectoryFollower(folders, metrics.watch)
    typer.echo(f"serving metrics on http://{host}:{port}/metrics", err=True)
    try:
        while True:
            follower.poll()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how this command ends
    finally:
        follower.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
