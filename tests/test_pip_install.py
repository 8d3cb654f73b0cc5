"""`pip install rlmrt` as a user who never cloned the repository: the wheel built from
this checkout, installed with its extras into a fresh virtual environment outside it,
set up by the package's own `rlm setup wasm`, checked by `rlm doctor`, and run against a
scripted model on every sandbox kind this machine offers, from a folder that is not the
checkout. The `local` extra is left out: it builds llama.cpp (scripts/setup-llama)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rlmrt.testing import scripted

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "rlmrt"
EXTRAS = "docker,mcp,viz,otel,metrics"
# files the package reads at run time besides its modules; the test also checks that every
# file of the source tree is there
RUN_TIME_FILES = (
    "rlmrt/sandbox/kernel.py",  # run by the sandboxes' own interpreters
    "rlmrt/sandbox/_wasm_runner.mjs",  # run by Deno
    "rlmrt/observe/prometheus-rules.yml",
    "rlmrt/py.typed",
)
SANDBOX_KINDS = ("local", "process", "docker", "wasm")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from the checkout."""
    folder = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return folder


def the_wheel(dist: Path) -> Path:
    wheels = list(dist.glob("rlmrt-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_every_file_and_passes_twine_check(dist: Path) -> None:
    assert list(dist.glob("rlmrt-*.tar.gz"))
    names = set(zipfile.ZipFile(the_wheel(dist)).namelist())
    assert set(RUN_TIME_FILES) <= names
    source = {
        f"rlmrt/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert source - names == set()
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        check=True,
        capture_output=True,
    )


def test_installed_from_the_wheel_it_sets_up_and_runs_on_every_sandbox(
    dist: Path, tmp_path: Path, serve
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    requirement = f"{the_wheel(dist)}[{EXTRAS}]"
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    work = tmp_path / "work"  # a user's folder, not the checkout
    work.mkdir()
    (work / "data.txt").write_text("x" * 1234)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RLM_", "COV_", "COVERAGE_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        RLMRT_HOME=str(tmp_path / "home"),
        RLM_LLM__API_KEY="sk-test",
        RLM_LLM__MAX_RETRIES="0",
        COLUMNS="200",  # doctor rows on one line
    )

    def rlm(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(venv / "bin" / "rlm"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    # the runtime set up before (by scripts/setup) is reused: nothing downloaded again
    setup = rlm("setup", "wasm")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "already installed" in setup.stdout and "installing" not in setup.stdout
    assert "│ wasm sandbox │ ok" in setup.stdout

    doctor = rlm("doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    rows = {row["name"]: row for row in json.loads(doctor.stdout)["checks"]}
    assert str(venv) in rows["rlmrt"]["detail"]  # the wheel's code, not the checkout's
    offered = [kind for kind in SANDBOX_KINDS if rows[f"{kind} sandbox"]["level"] == "ok"]
    assert {"local", "process", "wasm"} <= set(offered), rows
    print(f"sandboxes run from the wheel: {', '.join(offered)}")  # docker when it is up

    for kind in offered:
        server = serve(scripted(root=["```repl\nprint(len(context))\n```", "FINAL(1234 chars)"]))
        run = rlm(
            "run",
            "How long is it?",
            "--context",
            "data.txt",
            "--model",
            "openai/test-model",
            "--api-base",
            server.url,
            "--sandbox",
            kind,
            "--json",
        )
        assert run.returncode == 0, f"{kind}: {run.stderr}"
        assert json.loads(run.stdout)["answer"] == "1234 chars", kind
        seen = [r.messages[-1]["content"] for r in server.requests if r.is_rlm_root]
        assert seen[1] == "Output:\n1234\n", kind  # the code ran in that sandbox
