"""The installed `rlm` console script, as a real process, against the scripted server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlmrt.observe.trajectory import read_events
from rlmrt.testing import Reply, scripted


@pytest.mark.slow
def test_console_script_run_json(serve, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("rlm")
    assert script.is_file(), f"{script} is missing: install the package (pip install -e .)"
    (tmp_path / "data.txt").write_text("x" * 1234)
    server = serve(scripted(root=["```repl\nprint(len(context))\n```", "FINAL(1234 chars)"]))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RLM_", "COV_", "COVERAGE_"))
    }
    env.update(
        RLMRT_HOME=str(tmp_path / "home"), RLM_LLM__API_KEY="sk-test", RLM_LLM__MAX_RETRIES="0"
    )
    proc = subprocess.run(
        [
            str(script),
            "run",
            "How long is it?",
            "--context",
            "data.txt",
            "--model",
            "openai/test-model",
            "--api-base",
            server.url,
            "--json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["answer"] == "1234 chars"
    assert data["partial"] is False
    assert Path(data["trajectory_path"]).parent == tmp_path / "home" / "runs"
    assert "run finished: final, 2 iterations" in proc.stderr  # plain progress: not a TTY
    seen = [r.messages[-1]["content"] for r in server.requests if r.is_rlm_root]
    assert seen[1] == "Output:\n1234\n"

    bad = subprocess.run(
        [str(script), "run", "q", "--sandbox", "lokal", "--model", "openai/m"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: ")
    assert "Did you mean 'local'?" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "message"),
    [
        (signal.SIGINT, 130, "error: interrupted"),
        (signal.SIGTERM, 143, "error: terminated (SIGTERM)"),
    ],
)
def test_ctrl_c_and_sigterm_exit_cleanly_and_close_the_trajectory(
    serve, tmp_path: Path, signum: int, code: int, message: str
) -> None:
    """Killed while the model call is under way, with a process sandbox started: the run
    unwinds, the trajectory ends with run_finished, and the sandbox's temp folder is gone."""
    script = Path(sys.executable).with_name("rlm")
    assert script.is_file(), f"{script} is missing: install the package (pip install -e .)"
    server = serve(lambda req: Reply(fault="hang"))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RLM_")}
    env.update(RLMRT_HOME=str(tmp_path / "home"), RLM_LLM__API_KEY="sk-test", TMPDIR=str(temp))
    proc = subprocess.Popen(
        [
            str(script),
            "run",
            "q",
            "--model",
            "openai/test-model",
            "--api-base",
            server.url,
            "--sandbox",
            "process",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell without job control starts background commands with
        # SIGINT ignored, and a child inherits that (Ctrl-C could then never reach it)
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 30
    while not server.requests and time.monotonic() < deadline:  # the model call is under way
        time.sleep(0.05)
    assert any(temp.iterdir()), "the process sandbox should have made its folder by now"
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()  # reaped, its pipes closed
        raise
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == message
    assert out == ""
    (path,) = (tmp_path / "home" / "runs").glob("*.jsonl")
    assert [e.kind for e in read_events(path)][-1] == "run_finished"
    assert list(temp.iterdir()) == []


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
