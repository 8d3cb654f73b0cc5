"""`rlm visualize`: the trajectory visualizer, a Streamlit app on 127.0.0.1.

Streamlit is the optional `viz` extra. The app runs headless (no browser is opened,
no usage statistics are sent); the command prints its URL and serves until Ctrl-C,
then stops the Streamlit process it started.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from rlmrt.cli import _options as opt
from rlmrt.cli._errors import EXIT_RUN_ERROR, CLIUsageError, fail

HOST = "127.0.0.1"
DEFAULT_PORT = 8501
STOP_WAIT_S = 10.0
INSTALL_HINT = "the visualizer needs Streamlit: pip install 'rlmrt[viz]'"


def visualize(
    run_id: Annotated[
        str | None,
        typer.Argument(
            help="Open this run (its id, or a unique prefix or suffix).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1.", min=1, max=65535)
    ] = DEFAULT_PORT,
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs-dir",
            help="Folder of trajectory files (default: trajectory_dir of the settings).",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    project: opt.ProjectName = None,
) -> None:
    """Open the trajectory visualizer: runs, recursion tree, timeline, code and output."""
    if not streamlit_installed():
        raise fail(INSTALL_HINT, code=EXIT_RUN_ERROR)
    folder = (
        runs_dir if runs_dir is not None else opt.load_settings(None, {}, project).trajectory.dir
    )
    url = f"http://{HOST}:{port}/"
    if run_id is not None:
        from rlmrt.observe.trajectory import find_run

        url += f"?run={find_run(folder, run_id).run_id}"
    check_port(port)
    process = subprocess.Popen(
        streamlit_command(port),
        env={**os.environ, "RLMRT_VISUALIZE_DIR": str(folder)},
        stdout=subprocess.DEVNULL,
    )
    print(f"rlm visualize: {url}  (runs in {folder}; Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop)  # `kill` stops Streamlit too
    try:
        code = process.wait()
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if code != 0:
        raise fail(f"streamlit stopped with exit code {code}", code=EXIT_RUN_ERROR)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def streamlit_installed() -> bool:
    try:
        return importlib.util.find_spec("streamlit") is not None
    except (ImportError, ValueError):  # a broken or stubbed-out installation
        return False


def streamlit_command(port: int) -> list[str]:
    """`streamlit run` on the app, headless, on 127.0.0.1 only, without telemetry."""
    app = Path(__file__).resolve().parent.parent / "visualize" / "app.py"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        f"--server.address={HOST}",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={HOST}",
        f"--browser.serverPort={port}",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
        "--logger.level=error",
    ]


def check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as Streamlit binds: a port left in TIME_WAIT by a stopped server is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise CLIUsageError(
                f"port {port} on {HOST} is in use ({exc.strerror or exc})",
                hint="pass another one with --port",
            ) from exc
