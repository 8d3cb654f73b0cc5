"""`rlm setup`: each step on this machine's real parts is idempotent (a second run does
nothing and says so), says what it needs when it may not act (`--no-root`), and ends
with its `rlm doctor` row."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rlmrt.local import store
from rlmrt.local.catalog import get_model
from rlmrt.sandbox import process as process_module
from rlmrt.setup import Host, Outcome
from rlmrt.setup._host import apt_install, run_quiet
from rlmrt.setup.observe import phoenix_venv

ROOT = os.geteuid() == 0
# the real model cache (`rlm model pull`), read before the tests isolate RLMRT_HOME
MODELS_DIR = str(store.models_dir())


class Notes:
    """A `Reporter` that keeps what a step said."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, line: str) -> None:
        self.lines.append(line)

    @contextmanager
    def working(self, what: str) -> Iterator[None]:
        self.lines.append(f"working: {what}")
        yield


@pytest.mark.parametrize(
    "step",
    # observe imports Phoenix (seconds) to name its version
    [
        "process",
        "wasm",
        "docker",
        "browser",
        "server",
        pytest.param("observe", marks=pytest.mark.slow),
    ],
)
def test_a_second_run_does_nothing_and_says_so(rlm_cli, step: str) -> None:
    if step == "observe" and not (phoenix_venv() / "bin" / "phoenix").is_file() and not ROOT:
        pytest.skip("Phoenix is not installed and this is not root")
    first = rlm_cli("setup", step)
    if first.exit_code != 0 and not ROOT:
        assert f"{step}: not finished: " in first.output
        pytest.skip(f"{step} needs root here: {first.output}")
    assert first.exit_code == 0, first.output
    second = rlm_cli("setup", step)
    assert second.exit_code == 0, second.output
    assert f"{step}: ready, nothing to do: " in second.output
    assert "installing" not in second.output and "starting" not in second.output
    if step in ("process", "wasm", "docker"):  # its doctor row, which is fine now
        assert "rlm doctor" in second.output
        assert f"{step} sandbox │ ok" in second.output


@pytest.mark.slow
def test_wasm_installs_into_an_empty_runtime_folder_once(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The install path: npm (its cache makes this seconds), the snapshot, the row."""
    folder = tmp_path / "wasm"
    monkeypatch.setenv("RLMRT_WASM_DIR", str(folder))
    monkeypatch.setenv("COLUMNS", "400")
    first = rlm_cli("setup", "wasm")
    assert first.exit_code == 0, first.output
    assert "wasm: installed deno@" in first.output
    assert "wasm: done: deno=" in first.output and f"memory snapshot {folder}" in first.output
    assert "│ wasm sandbox │ ok     │ Deno " in first.output
    assert (folder / ".installed").read_text().startswith("deno=")
    second = rlm_cli("setup", "wasm")
    assert "wasm: ready, nothing to do: " in second.output
    assert "installed deno@" not in second.output


def test_without_root_the_docker_step_prints_the_command(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rlmrt.sandbox import docker as docker_sandbox

    monkeypatch.setattr(docker_sandbox, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")  # no engine there
    monkeypatch.setenv("COLUMNS", "400")  # the doctor row on one line
    result = rlm_cli("setup", "docker", "--no-root")
    assert result.exit_code == 1
    rlm = Host.detect().rlm
    assert "docker: not finished: needs root: dockerd is not running" in result.output
    assert f"docker: run: sudo {rlm} setup docker\n" in result.output
    assert "│ docker sandbox │ warn   │ not available: " in result.output
    assert (
        "(is dockerd running? `rlm setup docker` starts it); run `rlm setup docker` (as root)"
        in result.output
    )
    assert "not finished: docker (see above)" in result.output


def test_without_root_a_missing_package_names_the_apt_command(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(process_module, "BWRAP", str(tmp_path / "no-bwrap"))
    monkeypatch.setenv("COLUMNS", "400")  # the doctor row on one line
    result = rlm_cli("setup", "--no-root", "process")  # the flag of the group holds too
    assert result.exit_code == 1
    assert "process: not finished: missing: bubblewrap (Debian packages)" in result.output
    assert (
        "process: run: sudo apt-get install -y --no-install-recommends bubblewrap" in result.output
    )
    assert "│ process sandbox │ warn   │ bubblewrap not found: `rlm setup process` installs it" in (
        result.output
    )


def test_apt_install_without_root_changes_nothing() -> None:
    notes = Notes()
    host = Host(root=False, rlm="rlm")
    outcome = apt_install(host, notes, "x", ["debootstrap"], recommends=True)
    assert outcome == Outcome(
        "x",
        "needs",
        "missing: debootstrap (Debian packages)",
        ("sudo apt-get install -y debootstrap",),
    )
    assert notes.lines == []  # nothing was run
    assert Host.detect(as_user=True).root is False
    assert host.rerun_as_root("docker") == "sudo rlm setup docker"


def test_a_failed_command_is_a_setup_error_with_its_output() -> None:
    from rlmrt.errors import SetupError

    with pytest.raises(SetupError, match=r"(?s)exit 3\):\nboom$"):
        run_quiet(["sh", "-c", "echo boom >&2; exit 3"])
    with pytest.raises(SetupError, match="cannot run /nonexistent/tool"):
        run_quiet(["/nonexistent/tool"])


def test_the_model_step_finds_the_pulled_model(rlm_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMRT_MODELS_DIR", MODELS_DIR)
    monkeypatch.setenv("COLUMNS", "400")
    if not store.verified(get_model(None)):
        pytest.skip(f"the local model is not in {MODELS_DIR} (rlm model pull)")
    result = rlm_cli("setup", "model")
    assert result.exit_code == 0, result.output
    assert "model: ready, nothing to do: " in result.output
    assert "(1.12 GB, sha256 checked) already in the cache" in result.output
    # the step ends with doctor's row, which also needs the server package (the `local`
    # extra; the other-Python suites install rlmrt without it)
    if importlib.util.find_spec("llama_cpp") is None:
        assert "pip install 'rlmrt[local]'" in result.output
    else:
        assert "│ local model │ ok     │ qwen2.5-coder-1.5b ready" in result.output


def test_the_phoenix_venv_is_where_the_setting_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RLMRT_PHOENIX_VENV", str(tmp_path / "phoenix"))
    assert phoenix_venv() == tmp_path / "phoenix"
    monkeypatch.delenv("RLMRT_PHOENIX_VENV")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert phoenix_venv() == tmp_path / "cache" / "rlmrt" / "phoenix"


@pytest.mark.slow
@pytest.mark.skipif(not ROOT or not shutil.which("apt-get"), reason="needs root and apt-get")
def test_apt_install_as_root_runs_apt_get() -> None:
    """An installed package: apt-get runs (update, install) and changes nothing."""
    notes = Notes()
    assert apt_install(Host(root=True, rlm="rlm"), notes, "x", ["bubblewrap"]) is None
    assert notes.lines == ["working: installing bubblewrap (apt-get)", "installed bubblewrap"]


def test_without_root_the_server_step_names_the_missing_packages(
    rlm_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rlmrt.setup import server as server_step

    found = server_step.system_binary

    def no_postgresql(name: str) -> str | None:
        return None if name in ("initdb", "postgres") else found(name)

    monkeypatch.setattr(server_step, "POSTGRES_ROOT", tmp_path / "no-postgresql")
    monkeypatch.setattr(server_step, "system_binary", no_postgresql)
    if server_step.redis_binary() is None:
        pytest.skip("redis-server is missing here")
    result = rlm_cli("setup", "--no-root", "server")
    assert result.exit_code == 1, result.output
    assert "server: not finished: missing: postgresql (Debian packages)" in result.output
    assert "server: run: sudo apt-get install -y --no-install-recommends postgresql" in (
        result.output
    )
    assert "not finished: server (see above)" in result.output
