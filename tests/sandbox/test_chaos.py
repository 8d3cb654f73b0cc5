"""Chaos: `rlm run` killed at random moments leaves nothing behind (issue 14).

Per isolated kind, runs of the real CLI (a subprocess, the scripted model) are killed
with SIGKILL or SIGTERM at random moments: before the sandbox starts, while code runs,
between turns. Then one normal run of the same kind. After it, no private folder of the
killed runs is left in the temp directory (each holds a copy of the context), no
process of theirs runs, no container of theirs exists, and every trajectory reads up
to the line the kill cut.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlmrt.errors import MissingDependencyError
from rlmrt.observe.trajectory import parse_line
from rlmrt.sandbox import Sandbox
from rlmrt.testing import scripted

pytestmark = pytest.mark.slow

KILLED_RUNS = {"process": 7, "docker": 7, "wasm": 6}  # 20 in all
SLEEPY_TURN = "```repl\nx = len(context)\nimport time\ntime.sleep(0.4)\nprint(x)\n```"


def _cli_env(home: Path, temp: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RLM_", "COV_", "COVERAGE_"))
    }
    env.update(
        RLMRT_HOME=str(home),
        TMPDIR=str(temp),  # the sandboxes' private folders go here, and only here
        RLM_LLM__API_KEY="sk-test",
        RLM_LLM__MAX_RETRIES="0",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    return env


def _run_cli(kind: str, url: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("rlm")
    argv = [str(script), "run", "How long is it?", "--context", "data.txt"]
    argv += ["--model", "openai/test-model", "--api-base", url, "--sandbox", kind]
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _containers_of(pids: list[int]) -> list[str]:
    from rlmrt.sandbox.docker import HOST_PID_LABEL, docker_client

    client = docker_client()
    left = []
    for pid in pids:
        filters = {"label": f"{HOST_PID_LABEL}={pid}"}
        left += [c.id or "" for c in client.containers.list(all=True, filters=filters)]
    return left


def _wait_until(check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if not value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", list(KILLED_RUNS))
def test_runs_killed_at_random_moments_leave_nothing_behind(
    kind: str, serve: Callable[..., Any], tmp_path: Path
) -> None:
    try:
        Sandbox(kind, exec_timeout_s=5).close()
    except MissingDependencyError as exc:
        pytest.skip(f"the {kind} sandbox cannot start here: {exc}")
    home, temp = tmp_path / "home", tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "data.txt").write_text("a context that must not stay behind\n" * 100)
    env = _cli_env(home, temp)
    chance = random.Random(f"chaos-{kind}")
    killed: list[int] = []
    for n in range(KILLED_RUNS[kind]):
        server = serve(scripted(root=[SLEEPY_TURN] * 20 + ["FINAL(done)"]))
        proc = _run_cli(kind, server.url, tmp_path, env)
        time.sleep(chance.uniform(0.5, 8.0))
        signum = signal.SIGKILL if n % 2 == 0 else signal.SIGTERM
        proc.send_signal(signum)
        proc.wait(timeout=60)
        killed.append(proc.pid)

    server = serve(scripted(root=["```repl\nprint(len(context))\n```", "FINAL(whole)"]))
    normal = _run_cli(kind, server.url, tmp_path, env)
    assert normal.wait(timeout=300) == 0

    left = _wait_until(lambda: sorted(p.name for p in temp.glob(f"rlmrt-{kind}-*")), 10)
    assert left == [], f"private folders of killed runs stayed: {left}"
    running = _wait_until(lambda: _processes_mentioning(str(temp)), 10)
    assert running == [], f"processes of killed runs still run: {running}"
    if kind == "docker":
        assert _wait_until(lambda: _containers_of(killed), 10) == []
    trajectories = sorted((home / "runs").rglob("*.jsonl"))
    assert len(trajectories) >= 2  # runs killed before their first event write none
    for path in trajectories:
        lines = path.read_text(encoding="utf-8").splitlines()
        events = [parse_line(line) for line in lines]
        # every line but the last (which a kill may cut) is an event
        assert all(event is not None for event in events[:-1]), path
