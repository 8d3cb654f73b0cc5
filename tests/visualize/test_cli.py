"""`rlm visualize`: the install hint, bad input, and a real Streamlit server on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rlmrt.cli._errors import ErrorHandlingGroup
from rlmrt.cli.visualize_cmd import streamlit_command, streamlit_installed, visualize

app = typer.Typer(cls=ErrorHandlingGroup)
app.command("visualize")(visualize)


@app.callback()
def _group() -> None:
    """`rlm` with only this command (the real one wires it in rlmrt.cli.main)."""


def _invoke(*args: str):
    result = CliRunner().invoke(app, ["visualize", *args])
    assert "Traceback" not in result.output
    return result


def test_without_streamlit_it_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "streamlit", None)  # what a missing package looks like
    assert not streamlit_installed()
    result = _invoke()
    assert result.exit_code == 1
    assert result.stderr == "error: the visualizer needs Streamlit: pip install 'rlmrt[viz]'\n"


def test_an_unknown_run_and_a_busy_port_are_usage_errors(runs, tmp_path) -> None:
    result = _invoke("nope", "--runs-dir", str(runs.folder))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: no run 'nope' in {runs.folder}")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _invoke("--port", str(port), "--runs-dir", str(runs.folder))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: port {port} on 127.0.0.1 is in use")
    assert "hint: pass another one with --port" in result.stderr
    assert _invoke("--port", "0").exit_code == 2  # out of range: typer's own check


def test_the_server_is_headless_local_and_sends_no_statistics() -> None:
    command = streamlit_command(8123)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(command[4]).is_file() and command[4].endswith("visualize/app.py")
    for flag in (
        "--server.address=127.0.0.1",
        "--server.port=8123",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ):
        assert flag in command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rlm_command() -> list[str]:
    """How to start `rlm` as a process."""
    return [sys.executable, "-m", "rlmrt.cli.main", "visualize"]


def start_visualize(args: list[str], *, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """`rlm visualize ARGS` as a real process; returns it and the URL it printed once the
    server answers its health check."""
    process = subprocess.Popen(
        [*rlm_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        return process, _wait_until_served(process)
    except BaseException:
        stop(process)
        raise


def _wait_until_served(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    assert line.startswith("rlm visualize: http://127.0.0.1:"), (line, process.stderr.read())
    url = line.split()[2]
    base = url.split("?")[0]
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "_stcore/health", timeout=5) as response:
                if response.read() == b"ok":
                    return url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("streamlit did not start") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop `rlm visualize` by its PID; it stops the Streamlit server it started."""
    process.terminate()
    try:
        process.communicate(timeout=20)  # also closes the pipes
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


@pytest.mark.slow
def test_rlm_visualize_serves_the_app_on_127_0_0_1(runs, tmp_path) -> None:
    port = free_port()
    process, url = start_visualize(
        [runs.tree.stem[-8:], "--port", str(port), "--runs-dir", str(runs.folder)], cwd=tmp_path
    )
    try:
        assert url == f"http://127.0.0.1:{port}/?run={runs.tree.stem}"
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        assert "<noscript>" in page  # Streamlit's own page, served from 127.0.0.1
    finally:
        stop(process)
    assert process.returncode == 0
    with socket.socket() as probe:  # the Streamlit process is gone with it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
