"""README's "Serve" section, run as written: its second command (a tenant, its key,
`rlm serve`) with the real CLI, then its Python snippet with the openai client, the
model being the scripted one (`--model` names it; the host and port are this test's)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from serving import model_reply, server_env, start_server

from rlmrt.testing import ScriptedOpenAIServer

pytestmark = pytest.mark.slow  # its own server process

ROOT = Path(__file__).resolve().parents[2]


def serve_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Serve\n", 1)[1].split("\n## ", 1)[0]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_the_serve_section_runs_as_written(
    tmp_path: Path,
    serve: Callable[..., ScriptedOpenAIServer],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    section = serve_section()
    setup, commands = blocks(section, "bash")[0].strip().splitlines()
    assert setup == "bash scripts/setup"  # the set-up of a fresh machine, tested on its own
    steps = [shlex.split(step) for step in commands.split("&&")]
    assert [step[:2] for step in steps] == [
        [".venv/bin/rlm", "tenants"],
        [".venv/bin/rlm", "keys"],
        [".venv/bin/rlm", "serve"],
    ]
    env = server_env(tmp_path / "home", serve(model_reply))
    create_tenant, create_key, serve_args = (step[1:] for step in steps)
    assert run_cli(env, *create_tenant, cwd=tmp_path).returncode == 0
    made = run_cli(env, *create_key, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rlm-")
    assert serve_args[:3] == ["serve", "--host", "0.0.0.0"]
    model = serve_args[serve_args.index("--model") + 1]
    assert model.startswith("openai/")
    # this test's host (start_server adds --port 0); the model's name as written, its
    # API base the scripted model's (server_env)
    server = start_server(tmp_path, env, "--host", "127.0.0.1", "--model", model)
    try:
        (snippet,) = blocks(section, "python")
        assert 'base_url="http://HOST:8000/v1", api_key="rlm-..."' in snippet
        script = snippet.replace("http://HOST:8000/v1", server.url).replace("rlm-...", key)
        ledger = (ROOT / "examples" / "ledger.txt").read_text()
        (tmp_path / "ledger.txt").write_text(ledger)
        ran = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        answer, usage = ran.stdout.split(" ", 1)
        assert answer == str(len(ledger))  # the scripted model answers len(context)
        assert "total_tokens=" in usage
    finally:
        assert server.stop() == 0
