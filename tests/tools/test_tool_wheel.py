"""A tool package as its author ships it: a wheel, installed with pip into a fresh
virtual environment, discovered there by its entry point, offered to a run when its pin
matches and refused at the run's start when it does not.

The wheel is assembled by `rlmrt.testing.build_wheel`, by the wheel spec (PEP 427): this
machine has no build backend that works offline (setuptools without `wheel`, no
hatchling), and pip installs it like any other."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlmrt.testing import build_wheel, scripted

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

VERSION = "2.1.0"

MODULE = '''\
from rlmrt.tools import tool


@tool(version="2.1.0")
def greet(name: str) -> str:
    """Greet someone by name."""
    return f"hello, {name}"
'''

RUN = """\
import sys
from rlmrt import RLM
from rlmrt.errors import ConfigError

with RLM(model="openai/test-model", api_base=sys.argv[1], api_key="k", sandbox="process") as rlm:
    try:
        print("answer:", rlm.completion("q", context="c").answer)
    except ConfigError as exc:
        print("refused:", exc)
"""


def test_a_tool_wheel_installed_in_a_venv_is_discovered_pinned_and_refused(
    tmp_path: Path, serve
) -> None:
    wheel = build_wheel(
        tmp_path / "dist",
        "rlmrt-greet",
        VERSION,
        {"greet_tool.py": MODULE},
        entry_points={"rlmrt.tools": {"greet": "greet_tool:greet"}},
    )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    # rlmrt and its dependencies come from the test's own environment (this checkout's
    # src first); the tool package is the only thing pip installs
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (venv_site / "test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    work = tmp_path / "project"
    work.mkdir()

    def rlm(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from rlmrt.cli.main import app; sys.argv[0] = 'rlm'; app()"
        return subprocess.run(
            [str(python), "-c", code, *args], cwd=work, env=env, capture_output=True, text=True
        )

    def grant(pin: str) -> None:
        (work / "rlm.toml").write_text(textwrap.dedent(f'[tools]\ngreet = "{pin}"\n'))

    grant(">=2,<3")
    listed = rlm("tools", "list")
    assert listed.returncode == 0, listed.stderr
    assert "greet 2.1.0 (rlmrt-greet 2.1.0): offered" in listed.stdout
    server = serve(scripted(root=['```repl\nFINAL(tools.greet("venv"))\n```']))
    ran = subprocess.run(
        [str(python), "-c", RUN, server.url], cwd=work, env=env, capture_output=True, text=True
    )
    assert ran.stdout == "answer: hello, venv\n", ran.stderr

    grant(">=3")
    info = rlm("tools", "info", "greet")
    assert info.returncode == 0, info.stderr
    assert "status: refused: tool 'greet' is installed at version 2.1.0" in info.stdout
    requests = len(server.requests)
    ran = subprocess.run(
        [str(python), "-c", RUN, server.url], cwd=work, env=env, capture_output=True, text=True
    )
    assert ran.stdout == (
        "refused: tool 'greet' is installed at version 2.1.0 (from rlmrt-greet 2.1.0), but"
        ' [tools] pins greet = ">=3"; install a matching version or change the pin\n'
    ), ran.stderr
    assert len(server.requests) == requests  # refused before the model was asked
