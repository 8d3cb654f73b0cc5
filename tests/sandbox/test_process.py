"""The process sandbox under real bubblewrap: behaviour, isolation and quotas."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.sandbox.test_kernel import FakeBridge

from rlmrt.errors import SandboxClosedError, UsageError
from rlmrt.sandbox import Limits, Sandbox, create_backend
from rlmrt.sandbox import process as process_module
from rlmrt.sandbox.process import ProcessSandbox, bubblewrap_available

pytestmark = pytest.mark.skipif(not bubblewrap_available(), reason="bubblewrap is not installed")

LIMITS = Limits(
    exec_timeout_s=5, memory_mb=256, output_bytes=20_000, processes=8, file_bytes=1_000_000
)


@pytest.fixture
async def sb() -> AsyncIterator[ProcessSandbox]:
    sandbox = ProcessSandbox(limits=LIMITS)
    await sandbox.start()
    yield sandbox
    await sandbox.aclose()


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def exists(path: str) -> bool:
    return os.path.exists(path)


# -- REPL behaviour -----------------------------------------------------------------------


async def test_repl_behaviour(sb: ProcessSandbox) -> None:
    assert sb.isolated
    result = await sb.execute("x = 40\ndef add(a):\n    return a + x\nprint('hi')")
    assert result.ok and result.stdout == "hi\n" and result.stderr == ""
    result = await sb.execute("add(2)")
    assert result.display == "42" and result.stdout == "42\n"
    result = await sb.execute("def f():\n    return 1 / 0\nf()")
    assert result.error is not None and result.error.endswith("ZeroDivisionError: division by zero")
    assert "line 2, in f" in result.error and result.stderr == result.error
    result = await sb.execute("answer = {'k': [1]}\nFINAL_VAR('answer')")
    assert result.final_set and result.final_answer == '{"k": [1]}'
    assert (await sb.execute("SHOW_VARS()")).stdout == (
        "Variables:\n  add: function\n  answer: dict\n  f: function\n  x: int\n"
    )


async def test_variables_and_context(sb: ProcessSandbox) -> None:
    await sb.load_context({"doc": "abc", "n": [1, 2]})
    await sb.set_variable("limit", 2)
    result = await sb.execute("print(context['doc'][:limit])\nout = len(context)")
    assert result.stdout == "ab\n"
    assert await sb.get_variable("out") == 2
    assert await sb.list_variables() == {"context": "dict", "limit": "int", "out": "int"}
    await sb.load_context("plain text", name="doc")
    assert (await sb.execute("doc.upper()")).display == "'PLAIN TEXT'"
    for name in ("1x", "_private", "class", "llm_query", "FINAL"):
        with pytest.raises(UsageError):
            await sb.set_variable(name, 1)
    with pytest.raises(UsageError, match="JSON"):
        await sb.set_variable("s", {1, 2})
    with pytest.raises(UsageError, match="no variable named 'nope'"):
        await sb.get_variable("nope")
    with pytest.raises(UsageError):
        await sb.execute(b"print(1)")  # type: ignore[arg-type]


async def test_bridge_calls_travel_over_the_channel() -> None:
    bridge = FakeBridge()
    async with ProcessSandbox(limits=LIMITS, bridge=bridge) as sandbox:
        result = await sandbox.execute(
            "rs = llm_query_batched(['ok', 'fail'])\n"
            "llm_query('a'), [isinstance(r, Exception) for r in rs], str(rs[1])"
        )
        assert result.display == "('llm:a:None', [False, True], 'ModelError: down')"


def test_registry_facade_and_close() -> None:
    with Sandbox("process", exec_timeout_s=5) as sandbox:
        assert sandbox.execute("print(6 * 7)").stdout == "42\n"
        backend = sandbox._backend
        assert isinstance(backend, ProcessSandbox)
        folder, pid = backend._dir, backend.kernel_host_pid
        assert folder is not None and folder.exists() and pid is not None
    assert not folder.exists()
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(SandboxClosedError):
        sandbox.execute("x = 1")
    assert isinstance(create_backend("process"), ProcessSandbox)


async def test_close_is_idempotent_and_removes_the_cgroups() -> None:
    sandbox = ProcessSandbox(limits=LIMITS)
    await sandbox.start()
    assert sandbox._cgroups is not None
    cgroup_dirs = list(sandbox._cgroups.dirs)
    await sandbox.aclose()
    await sandbox.aclose()
    assert all(not d.exists() for d in cgroup_dirs)
    with pytest.raises(SandboxClosedError):
        await sandbox.execute("x = 1")


async def test_start_latency_is_small(sb: ProcessSandbox) -> None:
    assert sb.start_latency_s is not None and sb.start_latency_s < 1.0


# -- isolation ---------------------------------------------------------------------------


async def test_kernel_runs_with_an_unprivileged_uid_on_the_host(sb: ProcessSandbox) -> None:
    pid = sb.kernel_host_pid
    assert pid is not None
    status = read_text(f"/proc/{pid}/status")
    fields = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines()}
    assert "0" not in fields["Uid"] and "0" not in fields["Gid"]
    assert int(fields["CapEff"][0], 16) == 0
    assert "kernel.py" in read_text(f"/proc/{pid}/cmdline")
    result = await sb.execute("import os\nos.getuid(), os.getgid()")
    assert result.display is not None and "0" not in result.display.strip("()").split(", ")


async def test_no_network(sb: ProcessSandbox) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        code = (
            f"import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))"
        )
        result = await sb.execute(code)
        assert result.error is not None
        assert "ConnectionRefusedError" in result.error or "OSError" in result.error
        with pytest.raises(socket.timeout):
            listener.accept()
        result = await sb.execute(
            "import socket\ntry:\n    socket.getaddrinfo('example.com', 80)\n"
            "except OSError as e:\n    print('no dns')"
        )
        assert result.stdout == "no dns\n"
    finally:
        listener.close()


async def test_host_environment_is_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMRT_TEST_SECRET", "s3cret-value")
    async with ProcessSandbox(limits=LIMITS) as sandbox:
        result = await sandbox.execute("import os\nsorted(os.environ)")
        assert result.display == "['HOME', 'LANG', 'PATH', 'PWD']"
        result = await sandbox.execute(
            "open('/proc/1/environ', 'rb').read() + open('/proc/self/environ', 'rb').read()"
        )
        assert "s3cret" not in (result.display or "") + (result.error or "")


async def test_host_files_are_not_readable(sb: ProcessSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    secret.chmod(0o600)
    for path in (str(secret), "/etc/shadow", "/root/.bashrc", str(Path.cwd()), "/work"):
        result = await sb.execute(
            f"import os\nos.listdir({path!r}) if os.path.isdir({path!r}) else open({path!r}).read()"
        )
        assert result.error is not None, path
        assert "FileNotFoundError" in result.error or "PermissionError" in result.error


async def test_writes_outside_fail_and_leave_nothing_on_the_host(
    sb: ProcessSandbox, tmp_path: Path
) -> None:
    for path in ("/usr/evil", "/rlmrt/evil", "/etc/evil", f"{tmp_path}/evil"):
        result = await sb.execute(f"open({path!r}, 'w').write('x')")
        assert result.error is not None, path
        assert not exists(path)
    marker = f"/tmp/rlmrt-sandbox-test-{os.getpid()}"
    result = await sb.execute(f"open({marker!r}, 'w').write('x')\nopen({marker!r}).read()")
    assert result.display == "'x'"  # the sandbox's own /tmp works ...
    assert not exists(marker)  # ... and is not the host's


# -- quotas ------------------------------------------------------------------------------


async def test_timeout_keeps_variables() -> None:
    async with ProcessSandbox(limits=Limits(exec_timeout_s=0.5)) as sandbox:
        await sandbox.execute("kept = 'yes'")
        result = await sandbox.execute("import time\ntime.sleep(30)")
        assert result.error is not None
        assert result.error.endswith(
            "TimeoutError: execution exceeded the 0.5 s time limit (timeout_s)"
        )
        assert (await sandbox.execute("kept")).display == "'yes'"


@pytest.mark.slow
async def test_stuck_code_that_ignores_the_interrupt_gets_a_fresh_kernel() -> None:
    async with ProcessSandbox(limits=Limits(exec_timeout_s=0.5)) as sandbox:
        await sandbox.load_context("ctx")
        await sandbox.execute("kept = 1")
        code = (
            "import signal, time\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF})\n"
            "time.sleep(100)"
        )
        result = await sandbox.execute(code)
        assert result.error is not None
        assert "0.5 s time limit (timeout_s)" in result.error
        assert "the sandbox was restarted and its variables were lost" in result.error
        assert 1.4 < result.duration_s < 5
        listed = await sandbox.list_variables()
        assert listed == {"context": "str"}  # `kept` is gone, the context is back
        assert (await sandbox.execute("print('alive')")).stdout == "alive\n"


async def test_memory_bomb_is_a_memory_error_naming_the_limit(sb: ProcessSandbox) -> None:
    await sb.execute("kept = 1")
    for code in ("b = bytearray(600 * 2**20)", "x = []\nwhile True:\n    x.append('y' * 2**20)"):
        result = await sb.execute(code)
        assert result.error is not None, code
        assert "MemoryError" in result.error and "memory_mb=256" in result.error
    assert (await sb.execute("kept")).display == "1"  # RLIMIT_AS: the kernel survives


@pytest.mark.slow
async def test_memory_cgroup_bounds_the_whole_process_tree(sb: ProcessSandbox) -> None:
    if sb._cgroups is None or sb._cgroups.memory is None:
        pytest.skip("no writable memory cgroup on this host")
    code = (
        "import subprocess, sys\n"
        'grab = \'b = bytearray(200 * 2**20)\\nb[::4096] = b"x" * len(b[::4096])\\n'
        "import time; time.sleep(3)'\n"
        "procs = [subprocess.Popen([sys.executable, '-c', grab]) for _ in range(3)]\n"
        "sorted(p.wait() for p in procs)"
    )
    result = await sb.execute(code)
    assert result.error is None, result.error
    assert result.display is not None and "-9" in result.display  # the OOM killer ended one
    assert (await sb.execute("print('alive')")).stdout == "alive\n"


async def test_fork_bomb_is_contained_by_pids(sb: ProcessSandbox) -> None:
    if "processes" not in sb.enforces:
        pytest.skip("no writable pids cgroup on this host")
    code = (
        "import os, time\n"
        "started = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        started += 1\n"
        "except OSError as e:\n"
        "    failure = type(e).__name__\n"
        "started, failure"
    )
    result = await sb.execute(code)
    assert result.error is None, result.error
    assert result.display is not None
    started, failure = eval(result.display)  # a tuple of an int and a str
    assert started <= 8 and failure == "BlockingIOError"


async def test_file_size_limit(sb: ProcessSandbox) -> None:
    result = await sb.execute("with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * 2_000_000)")
    assert result.error is not None and "File too large" in result.error
    result = await sb.execute("with open('/tmp/small', 'wb') as f:\n    f.write(b'x' * 1000)")
    assert result.ok


async def test_output_flood_is_truncated(sb: ProcessSandbox) -> None:
    result = await sb.execute("for i in range(200_000):\n    print('0123456789' * 5)")
    assert len(result.stdout) < 20_100
    assert "[output truncated: " in result.stdout
    result = await sb.execute("import os\nn = os.write(1, b'z' * 500_000)")
    assert len(result.stdout) < 20_100 and "[output truncated: 480000 more bytes]" in result.stdout


async def test_cpu_limit_in_the_kernel_keeps_variables() -> None:
    async with ProcessSandbox(limits=Limits(exec_timeout_s=10, cpu_s=0.3)) as sandbox:
        await sandbox.execute("kept = 2")
        result = await sandbox.execute("while True:\n    pass")
        assert result.error is not None
        assert result.error.endswith(
            "TimeoutError: execution used more than 0.3 s of CPU (cpu_s limit)"
        )
        assert (await sandbox.execute("kept")).display == "2"


@pytest.mark.slow
async def test_cpu_limit_counts_child_processes() -> None:
    async with ProcessSandbox(limits=Limits(exec_timeout_s=20, cpu_s=0.3)) as sandbox:
        code = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'while True: pass'])"
        result = await sandbox.execute(code)
        assert result.error is not None
        assert "cpu_s limit" in result.error and "restarted" in result.error
        assert result.duration_s < 10
        assert (await sandbox.execute("print('alive')")).stdout == "alive\n"


# -- without bubblewrap ------------------------------------------------------------------


async def test_fallback_without_bubblewrap_is_reported_not_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(process_module, "BWRAP", str(tmp_path / "no-bwrap"))
    monkeypatch.setattr(process_module, "_warned", False)
    assert not bubblewrap_available()
    report = {q.name: q for q in ProcessSandbox.quota_report()}
    assert not report["isolation"].enforced and "not found" in report["isolation"].how
    assert not report["network"].enforced
    with caplog.at_level(logging.WARNING, logger="rlmrt"):
        async with ProcessSandbox(limits=Limits(exec_timeout_s=0.5, memory_mb=256)) as sandbox:
            assert not sandbox.isolated
            await sandbox.load_context("fallback ctx")
            result = await sandbox.execute("x = 1\nprint(context)")
            assert result.stdout == "fallback ctx\n"
            result = await sandbox.execute("while True: pass")
            assert result.error is not None and "timeout_s" in result.error
            result = await sandbox.execute("b = bytearray(600 * 2**20)")
            assert result.error is not None and "memory_mb=256" in result.error
        async with ProcessSandbox() as again:
            assert (await again.execute("1 + 1")).display == "2"
    warnings = [r for r in caplog.records if "bubblewrap not found" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_quota_report_shape() -> None:
    report = ProcessSandbox.quota_report()
    names = [q.name for q in report]
    assert names == [
        "isolation",
        "network",
        "uid",
        "exec_timeout_s",
        "cpu_s",
        "memory_mb",
        "processes",
        "file_bytes",
        "output_bytes",
    ]
    assert all(isinstance(q.enforced, bool) and q.how for q in report)
    assert {q.name: q.enforced for q in report}["isolation"] is True


async def test_two_sandboxes_run_side_by_side() -> None:
    async with ProcessSandbox(limits=LIMITS) as a, ProcessSandbox(limits=LIMITS) as b:
        await asyncio.gather(a.execute("v = 'a'"), b.execute("v = 'b'"))
        results = await asyncio.gather(a.execute("v"), b.execute("v"))
        assert [r.display for r in results] == ["'a'", "'b'"]
