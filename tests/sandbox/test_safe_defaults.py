"""Issue 14: limits that hold whatever the code does, with no configuration.

Each test is a repro from the issue, run on every kind it applies to: the default kind
is one whose limits C code cannot escape, every isolated kind has quotas by default,
what code leaves running is bounded, bytes travel to every kind, and nothing of a
sandbox stays readable or behind.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlmrt.config import RLMConfig
from rlmrt.errors import MissingDependencyError
from rlmrt.sandbox import Limits, Sandbox
from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox._sweep import sweep
from rlmrt.sandbox.local import LocalSandbox

ISOLATED = ("process", "docker", "wasm")
WITH_PROCESSES = ("process", "docker")  # kinds whose code can start processes and threads


def open_sandbox(kind: str, **limits: Any) -> Sandbox:
    try:
        return Sandbox(kind, **limits)
    except MissingDependencyError as exc:
        pytest.skip(f"the {kind} sandbox cannot start here: {exc}")


@pytest.fixture
def sandboxes() -> Iterator[list[Sandbox]]:
    made: list[Sandbox] = []
    yield made
    for sandbox in made:
        sandbox.close()


def kernel(sandbox: Sandbox) -> KernelBackend:
    backend = sandbox._backend
    assert isinstance(backend, KernelBackend)
    return backend


def cpu_used_over(sandbox: Sandbox, seconds: float) -> float:
    backend = kernel(sandbox)
    before = backend._cpu_seconds()
    time.sleep(seconds)
    after = backend._cpu_seconds()
    assert before is not None and after is not None
    return after - before


# -- 1. the default sandbox holds whatever the code does ----------------------------------


def test_the_default_kind_is_process() -> None:
    assert RLMConfig().sandbox.kind == "process"
    with Sandbox(exec_timeout_s=5) as sandbox:
        assert sandbox.kind == "process"
        assert sandbox.execute("print(1 + 1)").stdout == "2\n"


def test_a_catastrophic_regex_on_the_default_sandbox_stops_and_leaves_the_host_running() -> None:
    ticks: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    with Sandbox(exec_timeout_s=2) as sandbox:
        thread = threading.Thread(target=ticker)
        thread.start()
        started = time.monotonic()
        try:
            result = sandbox.execute("import re\nre.match(r'(a+)+$', 'a' * 32 + 'b')")
        finally:
            done.set()
            thread.join()
        took = time.monotonic() - started
        assert result.error is not None and "timeout_s" in result.error
        assert took < 6
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps) < 0.5  # the host's threads ran all along
        assert sandbox.execute("print('alive')").stdout == "alive\n"


def test_local_reports_time_and_memory_as_best_effort() -> None:
    backend = LocalSandbox(limits=Limits())
    assert {"exec_timeout_s", "memory_mb"} <= set(backend.unenforced_limits())
    report = {q.name: q for q in LocalSandbox.quota_report()}
    for name in ("exec_timeout_s", "memory_mb"):
        assert not report[name].enforced and "best-effort" in report[name].how


# -- 2. safe default quotas on every isolated kind -----------------------------------------


def test_every_limit_has_a_default() -> None:
    limits = Limits()
    assert limits.processes is not None and limits.file_bytes is not None
    assert limits.cpu_s is not None and limits.exec_timeout_s is not None


@pytest.mark.parametrize("kind", WITH_PROCESSES)
def test_a_fork_bomb_is_bounded_without_configuration(kind: str, sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=5, memory_mb=256)
    sandboxes.append(sandbox)
    code = (
        "import os, time\n"
        "started = 0\n"
        "try:\n"
        "    for _ in range(1000):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "except OSError:\n"
        "    pass\n"
        "print(started)"
    )
    result = sandbox.execute(code)
    assert result.error is None, result.error
    assert int(result.stdout) <= Limits().processes  # type: ignore[operator]
    # the sleeping children were ended with the execute: the next one can fork again
    result = sandbox.execute(code)
    assert result.error is None and int(result.stdout) > 10


@pytest.mark.parametrize("kind", WITH_PROCESSES)
def test_a_file_past_the_default_size_fails(kind: str, sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=10)
    sandboxes.append(sandbox)
    code = (
        f"with open('/tmp/big', 'wb') as f:\n    f.seek({Limits().file_bytes})\n    f.write(b'x')"
    )
    result = sandbox.execute(code)
    assert result.error is not None and "File too large" in result.error


# -- 3. cpu_s and time bound the whole process tree ----------------------------------------


@pytest.mark.parametrize("kind", WITH_PROCESSES)
def test_a_spinning_child_ends_with_its_execute(kind: str, sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=5, cpu_s=2)
    sandboxes.append(sandbox)
    result = sandbox.execute("import os\nif os.fork() == 0:\n    while True: pass\nkept = 1")
    assert result.error is None, result.error
    assert cpu_used_over(sandbox, 1.0) < 0.3
    assert sandbox.execute("kept").display == "1"


@pytest.mark.parametrize("kind", WITH_PROCESSES)
def test_a_spinning_thread_left_running_is_bounded_by_cpu_s(
    kind: str, sandboxes: list[Sandbox]
) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=5, cpu_s=1)
    sandboxes.append(sandbox)
    code = (
        "import threading\n"
        "def spin():\n"
        "    while True: pass\n"
        "threading.Thread(target=spin, daemon=True).start()"
    )
    assert sandbox.execute(code).error is None
    deadline = time.monotonic() + 20
    while kernel(sandbox)._idle_watch is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kernel(sandbox)._idle_killed  # the kernel and its spinner were ended
    result = sandbox.execute("print('after')")
    assert result.stdout == "after\n"
    assert "threads the previous code left running" in result.stderr
    assert "cpu_s limit" in result.stderr


# -- 4. wasm sleeps without burning a core -------------------------------------------------


def test_wasm_sleep_does_not_burn_a_core(sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox("wasm", exec_timeout_s=5)
    sandboxes.append(sandbox)
    backend = kernel(sandbox)
    before = backend._cpu_seconds()
    result = sandbox.execute("import time\ntime.sleep(2)\nprint('slept')")
    after = backend._cpu_seconds()
    assert result.stdout == "slept\n" and result.duration_s >= 2
    assert before is not None and after is not None and after - before < 1.0
    result = sandbox.execute("import time\ntime.sleep(60)")
    assert result.error is not None and "timeout_s" in result.error
    assert sandbox.execute("time.sleep(-1)").error is not None


# -- 5. crashes leave nothing behind; nothing readable by others ---------------------------


@pytest.mark.parametrize("kind", ISOLATED)
def test_the_private_folder_is_no_other_users_to_read(kind: str, sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=10)
    sandboxes.append(sandbox)
    sandbox.load_context("secret text")
    assert sandbox.execute("print(context)").stdout == "secret text\n"
    folder = kernel(sandbox)._dir
    assert folder is not None
    assert folder.name.startswith(f"rlmrt-{kind}-{os.getpid()}-")
    assert folder.stat().st_mode & 0o077 == 0
    assert (folder / "context.txt").stat().st_mode & 0o077 == 0


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_folders_of_dead_hosts_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f"rlmrt-process-{dead_pid()}-abc"
    dead.mkdir()
    (dead / "context.txt").write_text("a copy of a context")
    mine = tmp_path / f"rlmrt-docker-{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / "rlmrt-something-else"
    other.mkdir()
    assert dead in sweep(tmp_path)
    assert not dead.exists() and mine.exists() and other.exists()


def test_a_reused_pid_does_not_keep_an_old_folder(tmp_path: Path) -> None:
    # a folder last changed before the process that has its pid started belongs to a
    # dead host whose pid was reused
    old = tmp_path / f"rlmrt-wasm-{os.getpid()}-x"
    old.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = tmp_path / f"rlmrt-wasm-{sleeper.pid}-y"
        reused.mkdir()
        os.utime(reused, (time.time() - 3600, time.time() - 3600))
        assert sweep(tmp_path) == [reused]
    finally:
        sleeper.kill()
        sleeper.wait()


HOST_SCRIPT = """
import sys, time
from rlmrt import Sandbox
sandbox = Sandbox(sys.argv[1], exec_timeout_s=60)
backend = sandbox._backend
print(backend.kernel_host_pid, backend._dir, flush=True)
sandbox.execute("x = 1")
time.sleep(60)
"""


def _kill_host_after_its_line(script: str, kind: str, *, settle_s: float = 0.0) -> list[str]:
    """Run `script` as a sandbox host in its own process, read the line it prints, wait
    `settle_s`, then SIGKILL it; the line's words (skips when the kind cannot start)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    host = subprocess.Popen(
        [sys.executable, "-c", script, kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        line = host.stdout.readline() if host.stdout else ""
        if not line:
            err = host.stderr.read() if host.stderr else ""
            if "MissingDependencyError" in err:
                pytest.skip(f"the {kind} sandbox cannot start here")
            raise AssertionError(err)
        time.sleep(settle_s)
        return line.split()
    finally:
        host.kill()
        host.wait()
        for stream in (host.stdout, host.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("kind", ISOLATED)
def test_a_killed_host_leaves_no_kernel_running(kind: str, tmp_path: Path) -> None:
    pid_text, folder = _kill_host_after_its_line(HOST_SCRIPT, kind)
    if kind != "docker":
        pid = int(pid_text)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"the {kind} kernel {pid} outlived its host"
    # the next sandbox sweeps the dead host's folder (the sweep runs once per process)
    assert Path(folder).exists()
    assert Path(folder) in sweep(Path(folder).parent)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- 6. bytes contexts on every kind --------------------------------------------------------

KINDS = ("local", *ISOLATED)


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_travel_to_and_from_every_kind(kind: str, sandboxes: list[Sandbox]) -> None:
    sandbox = open_sandbox(kind, exec_timeout_s=10)
    sandboxes.append(sandbox)
    folder = {"a.txt": "text", "b.bin": b"\x00\xff\xfe", "nested": [b"x", {"y": b"\x80"}]}
    sandbox.load_context(folder)
    sandbox.load_context(b"\x89PNG\r\n", name="image")
    code = (
        "print(isinstance(context['b.bin'], bytes), context['b.bin'] == b'\\x00\\xff\\xfe',"
        " context['nested'][1]['y'], context['a.txt'], image[:4])"
    )
    result = sandbox.execute(code)
    assert result.error is None, result.error
    assert result.stdout == "True True b'\\x80' text b'\\x89PNG'\n"
    sandbox.set_variable("blob", {"k": [b"\x01\x02"]})
    assert sandbox.execute("print(blob['k'][0] == b'\\x01\\x02')").stdout == "True\n"
    sandbox.execute("made = {'raw': b'\\xff' * 3, 'n': 1}")
    assert sandbox.get_variable("made") == {"raw": b"\xff\xff\xff", "n": 1}


# -- 8. small things --------------------------------------------------------------------------


def test_a_blocked_attrgetter_says_read_not_set() -> None:
    with Sandbox("local", exec_timeout_s=5) as sandbox:
        result = sandbox.execute("import operator\noperator.attrgetter('__globals__')")
        assert result.error is not None
        assert re.search(r"'__globals__' cannot be read", result.error)
        assert "cannot be set" not in result.error


BUSY_HOST_SCRIPT = """
import sys
from rlmrt import Sandbox
sandbox = Sandbox(sys.argv[1], exec_timeout_s=600, cpu_s=600)
backend = sandbox._backend
sandbox.execute("x = 1")
print(backend.kernel_host_pid, getattr(backend, "container_id", None), flush=True)
sandbox.execute(
    "import signal, time\\n"
    "signal.signal(signal.SIGALRM, signal.SIG_IGN)\\n"  # the kernel's own timer is gone
    "time.sleep(600)"
)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", WITH_PROCESSES)
def test_a_host_killed_while_a_cell_runs_takes_the_kernel_with_it(kind: str) -> None:
    """Killed mid-cell, a host can no longer stop the cell: the kernel notices that its
    channel's other end closed and exits (a container used to run on until the next
    docker start swept it)."""
    # killed a second after the line: the cell is sleeping by then
    pid_text, container_id = _kill_host_after_its_line(BUSY_HOST_SCRIPT, kind, settle_s=1.0)
    deadline = time.monotonic() + 10
    if kind == "docker":
        import docker
        import docker.errors

        client = docker.from_env()

        def running() -> bool:
            try:
                return client.containers.get(container_id).status == "running"
            except docker.errors.NotFound:
                return False

        while running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(), f"container {container_id} outlived its host"
        client.close()
        return
    pid = int(pid_text)
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"the {kind} kernel {pid} outlived its host"
