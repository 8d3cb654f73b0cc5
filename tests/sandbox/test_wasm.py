"""The wasm sandbox with its real parts (Deno and Pyodide from `rlm setup wasm`):
permissions, quotas, the offline package story and calls to the host.

Pyodide takes seconds to start: most tests share one sandbox per module and leave it
as they found it; the tests that kill Deno use their own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.sandbox.test_contract import listener  # noqa: F401 - the fixture
from tests.sandbox.test_kernel import FakeBridge

from rlmrt._loop import LoopThread
from rlmrt.errors import MissingDependencyError, UsageError
from rlmrt.sandbox import ExecResult, Limits, Sandbox, create_backend
from rlmrt.sandbox import wasm as wasm_module
from rlmrt.sandbox.wasm import WasmSandbox, find_runtime

try:
    find_runtime()
    MISSING = ""
except MissingDependencyError as exc:
    MISSING = str(exc)

needs_runtime = pytest.mark.skipif(bool(MISSING), reason=MISSING)
LIMITS = Limits(exec_timeout_s=5, memory_mb=256, output_bytes=20_000)
SECRET = "wasm-s3cr3t-5e2b"


class Driver:
    """A started `WasmSandbox` driven from synchronous tests on its own loop thread."""

    def __init__(self, limits: Limits = LIMITS) -> None:
        self.loop = LoopThread("test-wasm")
        self.backend = WasmSandbox(limits=limits)
        self.loop.run(self.backend.start())

    def run(self, code: str) -> ExecResult:
        return self.loop.run(self.backend.execute(code))

    def out(self, code: str) -> str:
        result = self.run(code)
        assert result.ok, result.error
        return result.stdout

    def close(self) -> None:
        try:
            self.loop.run(self.backend.aclose())
        finally:
            self.loop.stop()


@pytest.fixture(scope="module")
def shared() -> Iterator[Driver]:
    if MISSING:
        pytest.skip(MISSING)
    os.environ["RLMRT_WASM_TEST_SECRET"] = SECRET  # a child process would inherit it
    try:
        driver = Driver()
    finally:
        del os.environ["RLMRT_WASM_TEST_SECRET"]
    yield driver
    driver.close()


@pytest.fixture
def own() -> Iterator[Any]:
    """Factory of sandboxes of their own, for tests that kill Deno."""
    if MISSING:
        pytest.skip(MISSING)
    made: list[Driver] = []

    def factory(**limits: Any) -> Driver:
        driver = Driver(Limits(**{"exec_timeout_s": 5, "memory_mb": 256, **limits}))
        made.append(driver)
        return driver

    yield factory
    for driver in made:
        driver.close()


# -- the runtime ------------------------------------------------------------------------


def test_missing_runtime_names_the_part_and_the_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLMRT_WASM_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MissingDependencyError) as caught:
        Sandbox("wasm")
    message = str(caught.value)
    assert "Deno" in message and "rlm setup wasm" in message and "nowhere" in message
    assert caught.value.extra == "wasm"
    deno = tmp_path / "half" / "node_modules" / "deno" / "deno"
    deno.parent.mkdir(parents=True)
    deno.write_text("#!/bin/sh\n")
    deno.chmod(0o755)
    with pytest.raises(MissingDependencyError, match="Pyodide"):
        find_runtime(tmp_path / "half")


def test_runtime_dir_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLMRT_WASM_DIR", str(tmp_path / "w"))
    assert wasm_module.runtime_dir() == tmp_path / "w"
    monkeypatch.delenv("RLMRT_WASM_DIR")
    monkeypatch.setenv("RLMRT_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "wasm" / "node_modules").mkdir(parents=True)
    assert wasm_module.runtime_dir() == tmp_path / "home" / "wasm"


@needs_runtime
def test_enforced_limits_are_reported() -> None:
    backend = create_backend("wasm", limits=Limits(file_bytes=1000, processes=2, cpu_s=3))
    assert backend.unenforced_limits() == ["file_bytes"]
    assert {"exec_timeout_s", "memory_mb", "output_bytes", "cpu_s", "processes"} <= backend.enforces
    report = {q.name: q.enforced for q in WasmSandbox.quota_report()}
    assert report["file_bytes"] is False and report["memory_mb"] is True


@needs_runtime
def test_deno_gets_no_permission_but_reading_its_files(tmp_path: Path) -> None:
    backend = WasmSandbox(limits=LIMITS)
    argv = backend._argv(tmp_path)
    allowed = [a for a in argv if a.startswith("--allow")]
    assert len(allowed) == 1 and allowed[0].startswith("--allow-read=")
    readable = allowed[0].removeprefix("--allow-read=").split(",")
    expected = [backend.pyodide, wasm_module.RUNNER, tmp_path]
    assert readable == [str(path) for path in expected]
    for denied in ("net", "env", "run", "write", "ffi", "sys", "import"):
        assert f"--deny-{denied}" in argv
    assert "--no-prompt" in argv and "--no-remote" in argv and "--no-npm" in argv


# -- permissions, seen from inside --------------------------------------------------------

JS_PROBES = {
    "read": "js.Deno.readTextFileSync('/etc/hostname')",
    "env": "js.Deno.env.get('RLMRT_WASM_TEST_SECRET')",
    "node-env": "js.process.env.RLMRT_WASM_TEST_SECRET",
    "write": "js.Deno.writeTextFileSync({target!r}, 'pwned')",
    "run": "js.Deno.Command.new('touch', js.Object.fromEntries([['args', [{target!r}]]]))"
    ".outputSync()",
    "sys": "js.Deno.hostname()",
}


@needs_runtime
@pytest.mark.parametrize("probe", list(JS_PROBES))
def test_deno_refuses_what_python_reaches_through_js(
    shared: Driver, probe: str, tmp_path: Path
) -> None:
    target = tmp_path / "pwned.txt"
    code = "import js\ntry:\n    print(repr(" + JS_PROBES[probe].format(target=str(target))
    code += "))\nexcept Exception as exc:\n    print(type(exc).__name__, exc)"
    out = shared.out(code)
    assert "NotCapable" in out or "PermissionDenied" in out, out
    assert SECRET not in out
    assert not target.exists()


@needs_runtime
def test_no_network_from_javascript(
    shared: Driver,
    listener: tuple[int, list[bytes]],  # noqa: F811 - the contract suite's fixture
) -> None:
    port, got = listener
    code = (
        "import js\n"
        "from pyodide.ffi import run_sync\n"
        "for url in ['http://127.0.0.1:{port}/', 'https://esm.sh/x']:\n"
        "    try:\n"
        "        print(run_sync(js.fetch(url)))\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "try:\n"
        "    print(run_sync(js.eval('import(\"https://esm.sh/x\")')))\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    ).replace("{port}", str(port))
    out = shared.out(code)
    assert "Response" not in out and "Module" not in out, out
    assert got == []


@needs_runtime
def test_python_sees_no_host_environment_or_files(shared: Driver) -> None:
    out = shared.out("import os\nprint(dict(os.environ))\nprint(sorted(os.listdir('/')))")
    assert SECRET not in out
    assert "root" not in json.dumps(out.splitlines()[1])  # Pyodide's own file system
    result = shared.run("open('/etc/hostname').read()")
    assert result.error is not None and "FileNotFoundError" in result.error


# -- the REPL ------------------------------------------------------------------------------


@needs_runtime
def test_variables_persist_and_the_kernel_is_the_shared_one(shared: Driver) -> None:
    assert shared.run("wasm_x = 40\ndef wasm_add(a):\n    return a + wasm_x").ok
    result = shared.run("wasm_add(2)")
    assert result.display == "42" and result.stdout == "42\n"
    result = shared.run("import sys\nprint(sys.platform, '_rlmrt_kernel' in sys.modules)")
    assert result.stdout == "emscripten True\n"
    variables = shared.loop.run(shared.backend.list_variables())
    assert variables["wasm_x"] == "int" and variables["wasm_add"] == "function"
    assert shared.run("del wasm_x, wasm_add").ok


@needs_runtime
def test_output_cap_and_raw_fd_writes_are_captured(own: Any) -> None:
    driver = own(output_bytes=200)
    result = driver.run("import os\nos.write(1, b'raw ' * 1000)\nprint('x' * 10_000)")
    assert result.stdout.startswith("raw raw")
    assert "[output truncated:" in result.stdout and len(result.stdout) < 400
    assert driver.out("print('after')") == "after\n"


@needs_runtime
def test_deep_recursion_is_a_recursion_error(shared: Driver) -> None:
    for code in (
        "def f(n):\n    return f(n + 1)\nf(0)",
        "x = []\nfor _ in range(100000):\n    x = [x]\nrepr(x)",  # C recursion
        "import sys\nsys.setrecursionlimit(10**6)\ndef g(n):\n    return g(n + 1)\ng(0)",
    ):
        result = shared.run(code)
        assert result.error is not None and "RecursionError" in result.error, result.error
    assert shared.out("import sys\nsys.setrecursionlimit(1000)\ndel x, f, g\nprint(1)") == "1\n"


@needs_runtime
@pytest.mark.parametrize("package", ["numpy", "pandas", "micropip"])
def test_cdn_packages_fail_at_once_by_name(shared: Driver, package: str) -> None:
    result = shared.run(f"import {package}")
    assert result.error is not None
    assert "ModuleNotFoundError" in result.error and repr(package) in result.error
    assert "offline" in result.error and "CDN" in result.error


@needs_runtime
def test_process_modules_say_there_are_no_processes(shared: Driver) -> None:
    result = shared.run("import subprocess")
    assert result.error is not None and "no processes" in result.error
    assert shared.out("import os\nprint(os.system('true'))") == f"{127 << 8}\n"


@needs_runtime
def test_contexts_load_from_a_file_and_stay_read_only(shared: Driver) -> None:
    backend = shared.backend
    big = "line of context\n" * 200_000  # 3.2 MB, read from the sandbox folder
    shared.loop.run(backend.load_context(big))
    assert shared.out("print(len(context), context[:4])") == f"{len(big)} line\n"
    shared.loop.run(backend.load_context({"rows": [1, 2]}, name="data"))
    assert shared.out("print(data['rows'])") == "[1, 2]\n"
    shared.loop.run(backend.load_context(b"\x00\xff", name="blob"))
    assert shared.out("print(blob)") == "b'\\x00\\xff'\n"
    result = shared.run("open('/rlmrt/new.txt', 'w').write('x')")
    assert result.error is not None and "PermissionError" in result.error
    assert shared.out("print(1)") == "1\n"
    with pytest.raises(UsageError):
        shared.loop.run(backend.load_context(object()))


# -- calls to the host ------------------------------------------------------------------------


@needs_runtime
def test_sub_calls_are_synchronous_and_the_bridge_is_set_after_start(shared: Driver) -> None:
    result = shared.run("llm_query('x')")
    assert result.error is not None and "no host bridge" in result.error
    bridge = FakeBridge()
    shared.backend.bridge = bridge  # as a warm pool does, after start
    try:
        out = shared.out(
            "a = llm_query('hi', model='m')\n"
            "b = llm_query_batched(['p', 'fail'])\n"
            "c = rlm_query('deep', context={'k': 1})\n"
            "d = rlm_query_batched(['q1', 'q2'], ['c1', 'c2'])\n"
            "print(a, [type(x).__name__ for x in b], c, d)"
        )
    finally:
        shared.backend.bridge = None
    assert out == "llm:hi:m ['str', 'QueryFailed'] rlm:deep:{'k': 1} ['rlm:q1', 'rlm:q2']\n"
    assert [call[0] for call in bridge.calls] == [
        "llm_query",
        "llm_query_batched",
        "rlm_query",
        "rlm_query_batched",
    ]


# -- quotas ---------------------------------------------------------------------------------


@needs_runtime
@pytest.mark.slow
def test_timeout_interrupts_or_kills_and_replaces_deno(own: Any) -> None:
    driver = own(exec_timeout_s=1)
    driver.loop.run(driver.backend.load_context("ctx"))
    assert driver.run("kept = 1").ok
    first = driver.backend.kernel_host_pid
    # a plain loop is interrupted inside Pyodide: same Deno, variables kept
    result = driver.run("while True:\n    pass")
    assert result.error is not None and "TimeoutError" in result.error
    assert "time limit (timeout_s)" in result.error and "restarted" not in result.error
    assert driver.out("print(kept)") == "1\n"
    assert driver.backend.kernel_host_pid == first
    # code that swallows the interrupt is killed with its Deno
    result = driver.run(
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass"
    )
    assert result.error is not None and "did not stop" in result.error
    assert "restarted" in result.error and "`context` was loaded again" in result.error
    assert driver.out("print(context)") == "ctx\n"
    assert driver.backend.kernel_host_pid != first
    result = driver.run("kept")
    assert result.error is not None and "NameError" in result.error


@needs_runtime
@pytest.mark.slow
def test_memory_limit_is_a_memory_error_and_the_sandbox_survives(own: Any) -> None:
    driver = own(memory_mb=128, exec_timeout_s=30)
    assert driver.run("kept = 'k'").ok
    result = driver.run(
        "def grow():\n    x = []\n    while True:\n        x.append(' ' * 10**6)\ngrow()"
    )
    assert result.error is not None and "MemoryError" in result.error
    assert "memory_mb=128" in result.error
    # wasm32 cannot even express 10 GB: refused before any allocation
    result = driver.run("bytearray(10**10)")
    assert result.error is not None and "OverflowError" in result.error
    # the memory is back: a sizeable allocation works, and the variables are there
    assert driver.out("y = ' ' * 50 * 10**6\nprint(len(y), kept)") == "50000000 k\n"


@needs_runtime
def test_a_full_javascript_heap_is_a_memory_error(own: Any) -> None:
    driver = own(memory_mb=128, exec_timeout_s=30)
    result = driver.run(
        "import js\na = js.Array.new()\nwhile True:\n    a.push(js.Array.new(10**6).fill(1.5))"
    )
    assert result.error is not None
    assert "MemoryError" in result.error and "memory_mb=128" in result.error
    assert "restarted" in result.error
    assert driver.out("print('back')") == "back\n"


@needs_runtime
@pytest.mark.slow
def test_cpu_limit_kills_deno(own: Any) -> None:
    driver = own(cpu_s=1, exec_timeout_s=20)
    result = driver.run(
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass"
    )
    assert result.error is not None and "cpu_s limit" in result.error
    assert driver.out("print('back')") == "back\n"


@needs_runtime
def test_a_dead_deno_is_reported_and_replaced(own: Any) -> None:
    driver = own()
    pid = driver.backend.kernel_host_pid
    assert pid is not None
    os.kill(pid, 9)
    result = driver.run("print(1)")
    assert result.error is not None and "SandboxError" in result.error
    assert "SIGKILL" in result.error
    assert driver.out("print(2)") == "2\n"


# -- rlm doctor ---------------------------------------------------------------------------


def test_doctor_says_how_to_get_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlmrt.cli import doctor_cmd

    monkeypatch.setenv("RLMRT_WASM_DIR", str(tmp_path))
    check = doctor_cmd.sandbox_check("wasm")
    assert (
        check.level == "warn" and "rlm setup wasm" in check.detail and str(tmp_path) in check.detail
    )
    monkeypatch.setitem(sys.modules, "rlmrt.sandbox.wasm", None)
    check = doctor_cmd.sandbox_check("wasm")
    assert check.level == "warn" and check.detail.startswith("not available in this rlmrt")


@needs_runtime
def test_doctor_reports_a_ready_runtime() -> None:
    from rlmrt.cli import doctor_cmd

    check = doctor_cmd.sandbox_check("wasm")
    assert check.level == "ok"
    assert wasm_module.DENO_VERSION in check.detail and wasm_module.PYODIDE_VERSION in check.detail
    assert "not enforced: file_bytes" in check.detail


# -- the memory snapshot -----------------------------------------------------------------


@needs_runtime
@pytest.mark.slow
def test_snapshot_is_made_once_and_a_failed_one_falls_back_to_a_full_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deno, pyodide = find_runtime()
    monkeypatch.setenv("RLMRT_WASM_DIR", str(tmp_path))
    (tmp_path / "node_modules").symlink_to(pyodide.parent)
    loop = LoopThread("test-snapshot")
    try:
        # a maker that cannot finish in time: no snapshot, and nothing half-written left
        monkeypatch.setattr(wasm_module, "SNAPSHOT_TIMEOUT_S", 0.01)
        assert loop.run(wasm_module.ensure_snapshot(deno, pyodide)) is None
        assert list((tmp_path / "snapshots").iterdir()) == []
        with Sandbox("wasm") as sb:  # boots Python in full
            assert sb.execute("print(6 * 7)").stdout == "42\n"
        monkeypatch.setattr(wasm_module, "SNAPSHOT_TIMEOUT_S", 120.0)
        made = loop.run(wasm_module.ensure_snapshot(deno, pyodide))
        assert made is not None and made.parent == tmp_path / "snapshots"
        assert made.stat().st_size > 10 << 20  # Python's booted memory
        assert loop.run(wasm_module.ensure_snapshot(deno, pyodide)) == made
        assert [p.name for p in made.parent.iterdir()] == [made.name]
        with Sandbox("wasm") as sb:  # starts from it
            assert sb.execute("print(6 * 7)").stdout == "42\n"
        assert loop.run(wasm_module.ensure_snapshot(tmp_path / "no-deno", pyodide)) is None
        made.write_bytes(os.urandom(20 << 20))  # damaged: Pyodide refuses it, boots in full
        with Sandbox("wasm") as sb:
            assert sb.execute("print(6 * 7)").stdout == "42\n"
    finally:
        loop.stop()
