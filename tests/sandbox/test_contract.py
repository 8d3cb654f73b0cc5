"""The sandbox contract: every registered backend passes the same suite.

A backend is done when this passes for it (STYLE.md, practice 10). Two parts:

- behaviour: what code run in any sandbox can rely on (output, variables, errors,
  FINAL, the variable API, the lifecycle);
- escape probes: effect-based, so they hold whatever the backend's policy is. A probe
  passes when the effect on the host did not happen (no secret in any output, no file
  written, no connection received, host modules unchanged, limits held), whether the
  code was refused or ran in a place where it could not reach the host.

After every probe the host is healthy (a fresh sandbox of the same kind works) and the
probed sandbox either still works or reports that it failed (`SandboxError`).

A kind is skipped only when its backend says it cannot run here (a missing extra).
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import contract_probes as probes
import pytest
from remote_helpers import kind_options, kind_params

from rlmrt.errors import MissingDependencyError, SandboxClosedError, SandboxError, UsageError
from rlmrt.sandbox import SANDBOXES, ExecResult, Sandbox
from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox.remote import RemoteSandbox

KINDS = SANDBOXES.names()
BASE_LIMITS: dict[str, Any] = {"exec_timeout_s": 10, "memory_mb": 512, "output_bytes": 100_000}

MakeSandbox = Callable[..., Sandbox]
#: what each kind needs beyond its limits (the remote kind: its host), set by `kind`
OPTIONS: dict[str, dict[str, Any]] = {}


@pytest.fixture(params=kind_params(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    OPTIONS[name] = kind_options(request, name)
    return name


def open_sandbox(kind: str, **limits: Any) -> Sandbox:
    """`Sandbox(kind, ...)`, or skip the test when the backend cannot run on this machine."""
    try:
        return Sandbox(kind, **{**BASE_LIMITS, **limits, **OPTIONS[kind]})
    except MissingDependencyError as exc:
        pytest.skip(f"the {kind} sandbox cannot start here: {exc}")


@pytest.fixture
def make(kind: str) -> Iterator[MakeSandbox]:
    """Build sandboxes of the kind under test; all are closed at the end."""
    made: list[Sandbox] = []

    def factory(**limits: Any) -> Sandbox:
        sandbox = open_sandbox(kind, **limits)
        made.append(sandbox)
        return sandbox

    yield factory
    for sandbox in made:
        sandbox.close()


@pytest.fixture
def sb(make: MakeSandbox) -> Sandbox:
    return make()


# -- helpers -------------------------------------------------------------------------------


def texts(result: ExecResult) -> str:
    """Everything the code's result shows to the model."""
    parts = (result.stdout, result.stderr, result.error, result.display, result.final_answer)
    return "\n".join(part for part in parts if part)


def fill(template: str, **values: Any) -> str:
    return template.format(
        **{key: repr(v) if isinstance(v, str) else v for key, v in values.items()}
    )


def assert_healthy(kind: str, probed: Sandbox | None = None) -> None:
    """A fresh sandbox of this kind works; the probed one works or says it failed."""
    if probed is not None:
        try:
            result = probed.execute("print(1+1)")
        except SandboxError:
            pass  # the backend stopped this sandbox; acceptable after a probe
        else:
            assert result.stdout == "2\n", f"the probed sandbox is broken: {texts(result)}"
    with open_sandbox(kind) as fresh:
        result = fresh.execute("print(1+1)")
        assert result.stdout == "2\n", f"a fresh {kind} sandbox is broken: {texts(result)}"


def rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def params(table: dict[str, str]) -> Any:
    return pytest.mark.parametrize("code", list(table.values()), ids=list(table))


# -- behaviour contract ------------------------------------------------------------------------


def test_print_goes_to_stdout(sb: Sandbox) -> None:
    result = sb.execute("print('hello', 42)\nprint('a', 'b', sep='-', end='!')")
    assert result.ok, result.error
    assert result.stdout == "hello 42\na-b!"
    assert result.error is None
    assert result.duration_s >= 0


def test_variables_persist(sb: Sandbox) -> None:
    assert sb.execute("x = 40\ndef add(a):\n    return a + x").ok
    assert sb.execute("print(add(2))").stdout == "42\n"


def test_error_carries_the_exception_type(sb: Sandbox) -> None:
    result = sb.execute("print('before')\nraise ValueError('boom')")
    assert not result.ok
    assert result.stdout == "before\n"
    assert result.error is not None and "ValueError: boom" in result.error
    result = sb.execute("1 / 0")
    assert result.error is not None and "ZeroDivisionError" in result.error
    assert sb.execute("print('after')").stdout == "after\n"


def test_syntax_error(sb: Sandbox) -> None:
    result = sb.execute("x = 1\ny = (\n")
    assert result.error is not None and "SyntaxError" in result.error
    assert sb.execute("print(1)").ok


def test_display_of_last_bare_expression(sb: Sandbox) -> None:
    result = sb.execute("x = 5\nx")
    assert result.display == "5"
    assert sb.execute("'text'").display == "'text'"
    for code in ("y = 3", "None", "print('x')"):
        assert sb.execute(code).display is None, code


def test_output_is_truncated_with_marker(make: MakeSandbox) -> None:
    sandbox = make(output_bytes=100)
    result = sandbox.execute("for i in range(1000):\n    print('0123456789')")
    assert result.stdout.startswith("0123456789\n")
    assert "[output truncated:" in result.stdout
    assert len(result.stdout) < 300


def test_final_final_var_show_vars(sb: Sandbox) -> None:
    result = sb.execute("FINAL('the answer')")
    assert result.final_set and result.final_answer == "the answer"
    result = sb.execute("answer = [1, 2]\nFINAL_VAR('answer')")
    assert result.final_set and result.final_answer == "[1, 2]"
    result = sb.execute("n = 3")
    assert not result.final_set and result.final_answer is None
    result = sb.execute("SHOW_VARS()")
    assert "answer: list" in result.stdout and "n: int" in result.stdout
    result = sb.execute("FINAL_VAR('missing')")
    assert not result.final_set and result.error is not None and "NameError" in result.error
    result = sb.execute("FINAL(61, 61, 61)")
    assert not result.final_set and result.error is not None
    assert "TypeError: FINAL() takes exactly one value, got 3; to answer with several" in (
        result.error
    )


# Known contract failures, strict so that the fix is noticed: both backends tell their
# helpers apart with `helpers.get(name) is not value`, which is False for any variable
# whose value is None, so such variables are invisible to get/list_variables.


@pytest.mark.parametrize(
    "value",
    ["text é", 3, 1.5, True, None, [1, "a", None], {"k": {"nested": [1, 2]}}],
    ids=["str", "int", "float", "bool", "none", "list", "dict"],
)
def test_set_get_list_variables(kind: str, sb: Sandbox, value: Any) -> None:
    sb.set_variable("v", value)
    assert sb.get_variable("v") == value
    result = sb.execute("w = v\nprint('seen')")
    assert result.stdout == "seen\n", result.error
    assert sb.get_variable("w") == value
    assert sb.list_variables() == {"v": type(value).__name__, "w": type(value).__name__}


def test_close_is_idempotent_and_final(kind: str) -> None:
    sandbox = open_sandbox(kind)
    assert sandbox.execute("x = 1").ok
    sandbox.close()
    sandbox.close()
    with pytest.raises(SandboxClosedError):
        sandbox.execute("x = 1")
    with pytest.raises(SandboxClosedError):
        sandbox.list_variables()
    with open_sandbox(kind) as other:
        pass
    with pytest.raises(SandboxClosedError):
        other.execute("1")


# -- escape probes: reaching the host ---------------------------------------------------------


@params(probes.READ_FILE)
def test_secret_file_is_not_read(kind: str, make: MakeSandbox, tmp_path: Path, code: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(probes.SECRET)
    sandbox = make()
    result = sandbox.execute(fill(code, secret=str(secret), host_pid=os.getpid()))
    assert probes.SECRET not in texts(result), f"secret leaked: {texts(result)}"
    assert_healthy(kind, sandbox)


@params(probes.WRITE_FILE)
def test_no_host_file_is_written(kind: str, make: MakeSandbox, tmp_path: Path, code: str) -> None:
    target = tmp_path / "written.txt"
    sandbox = make()
    result = sandbox.execute(fill(code, target=str(target), host_pid=os.getpid()))
    assert not target.exists(), f"host file written: {texts(result)}"
    assert_healthy(kind, sandbox)


@params(probes.SHELL)
def test_no_shell_command_reaches_the_host(
    kind: str, make: MakeSandbox, tmp_path: Path, code: str
) -> None:
    target = tmp_path / "touched.txt"
    sandbox = make()
    result = sandbox.execute(fill(code, target=str(target)))
    assert not target.exists(), f"host file created by a command: {texts(result)}"
    assert_healthy(kind, sandbox)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    received.append(conn.recv(100) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join()
    server.close()


@params(probes.NETWORK)
def test_no_tcp_connection_to_the_host(
    kind: str, make: MakeSandbox, listener: tuple[int, list[bytes]], code: str
) -> None:
    port, received = listener
    sandbox = make()
    result = sandbox.execute(fill(code, port=port))
    time.sleep(0.2)  # let the listener's thread record a late connection
    assert received == [], f"the listener got {received}: {texts(result)}"
    assert_healthy(kind, sandbox)


@params(probes.ENVIRONMENT)
def test_host_environment_is_not_read(
    kind: str, make: MakeSandbox, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    monkeypatch.setenv(probes.ENV_NAME, probes.SECRET)
    sandbox = make()  # built after the variable is set: a child process would inherit it
    result = sandbox.execute(fill(code, env=probes.ENV_NAME, host_pid=os.getpid()))
    assert probes.SECRET not in texts(result), f"environment leaked: {texts(result)}"
    assert_healthy(kind, sandbox)


@params(probes.HOST_STATE)
def test_host_state_is_not_changed(kind: str, make: MakeSandbox, code: str) -> None:
    dumps, separator = json.dumps, json.JSONEncoder.item_separator
    cwd, path = os.getcwd(), list(sys.path)
    sandbox = make()
    result = sandbox.execute(code)
    assert json.dumps is dumps, texts(result)
    assert json.JSONEncoder.item_separator == separator
    assert json.dumps({"a": 1}) == '{"a": 1}'
    assert "RLMRT_CONTRACT_INJECTED" not in os.environ
    assert os.getcwd() == cwd
    assert sys.path == path
    assert_healthy(kind, sandbox)


# -- escape probes: resource limits -------------------------------------------------------------

TIMEOUT_S = 1.0


@pytest.mark.slow
@params(probes.INFINITE)
def test_infinite_work_hits_the_time_limit(kind: str, make: MakeSandbox, code: str) -> None:
    sandbox = make(exec_timeout_s=TIMEOUT_S)
    started = time.monotonic()
    result = sandbox.execute(code)
    elapsed = time.monotonic() - started
    assert result.error is not None, f"no error after {elapsed:.1f}s: {texts(result)}"
    assert "TimeoutError" in result.error and "time limit" in result.error, result.error
    assert elapsed < TIMEOUT_S + 2, f"took {elapsed:.1f}s"
    assert_healthy(kind, sandbox)


MEMORY_MB = 128


@pytest.mark.slow
@params(probes.MEMORY)
def test_memory_bomb_hits_the_memory_limit(kind: str, make: MakeSandbox, code: str) -> None:
    if kind == "wasm" and code == probes.MEMORY["one-shot"]:
        # wasm32 has a 4 GiB address space: 10**10 does not fit a size, so CPython
        # refuses it with OverflowError before any allocation is tried
        pytest.skip("a 10 GB request is not expressible in wasm32")
    sandbox = make(memory_mb=MEMORY_MB, exec_timeout_s=20)
    before = rss()
    result = sandbox.execute(code)
    grown = rss() - before
    assert result.error is not None, texts(result)
    assert "MemoryError" in result.error, result.error
    assert "memory limit" in result.error or "memory_mb" in result.error, result.error
    assert grown < 200 * 2**20, f"host grew by {grown / 2**20:.0f} MB"
    assert_healthy(kind, sandbox)


PROCESSES = 16


@pytest.mark.slow
def test_fork_bomb_is_contained(kind: str, make: MakeSandbox) -> None:
    sandbox = make(processes=PROCESSES, exec_timeout_s=5)
    started = time.monotonic()
    result = sandbox.execute(probes.FORK)
    elapsed = time.monotonic() - started
    forked = re.search(r"^forked (\d+)$", result.stdout, re.MULTILINE)
    if result.error is None:
        assert forked is not None, texts(result)
        assert int(forked.group(1)) <= PROCESSES, f"not contained: {texts(result)}"
    else:  # failed: it must not have got far either
        assert forked is None or int(forked.group(1)) <= PROCESSES, texts(result)
    assert elapsed < 5 + 2, f"took {elapsed:.1f}s"
    assert_healthy(kind, sandbox)


@params(probes.FLOOD)
def test_output_flood_is_truncated(kind: str, make: MakeSandbox, code: str) -> None:
    sandbox = make(output_bytes=1000, exec_timeout_s=5)
    result = sandbox.execute(code)
    assert len(result.stdout) < 2000 and len(result.stderr) < 2000, (
        len(result.stdout),
        len(result.stderr),
    )
    assert "[output truncated:" in result.stdout + result.stderr, texts(result)[:300]
    assert_healthy(kind, sandbox)


# -- restarts ----------------------------------------------------------------------------------

# swallows every interrupt, so only killing the sandbox ends it
STUCK = (
    "while True:\n"
    "    try:\n"
    "        while True:\n"
    "            pass\n"
    "    except BaseException:\n"
    "        pass"
)


@pytest.mark.slow
def test_every_loaded_context_survives_a_restart(kind: str, make: MakeSandbox) -> None:
    if not issubclass(SANDBOXES.load(kind), (KernelBackend, RemoteSandbox)):
        pytest.skip(f"the {kind} sandbox is never restarted: its variables outlive a timeout")
    sandbox = make(exec_timeout_s=TIMEOUT_S)
    sandbox.load_context("first", name="context")
    sandbox.load_context({"n": [1, 2]}, name="context_1")
    assert sandbox.execute("lost = 1").ok
    result = sandbox.execute(STUCK)
    assert result.error is not None and "restarted" in result.error, texts(result)
    assert "(`context`, `context_1` were loaded again)" in result.error
    assert sandbox.list_variables() == {"context": "str", "context_1": "dict"}
    assert sandbox.execute("print(context, context_1['n'])").stdout == "first [1, 2]\n"


def test_a_value_that_is_not_data_comes_back_rendered_when_asked(
    kind: str, make: MakeSandbox
) -> None:
    """A viewer of the REPL (MCP's get_repl_context) asks for values as text when they
    cannot leave the sandbox as data: the same rendering on every kind."""
    sandbox = make()
    assert sandbox.execute("s = {3}\nt = (1, b'\\xff')").ok
    assert sandbox.get_variable("s", rendered=True) == "{3}"
    assert sandbox.get_variable("t", rendered=True) in ([1, b"\xff"], (1, b"\xff"))
    if kind != "local":  # in process, every value is the object itself
        with pytest.raises(UsageError, match="Object of type set is not JSON serializable"):
            sandbox.get_variable("s")


def test_text_with_a_lone_surrogate_travels(kind: str, make: MakeSandbox) -> None:
    """A str from a shell or a file name may hold lone surrogates ('\\udcff'): every
    kind takes and gives it back without breaking the channel (wasm's JavaScript side
    turns it into U+FFFD)."""
    sandbox = make()
    sandbox.load_context("a\udcffb")
    result = sandbox.execute("FINAL(context)")
    assert result.error is None, result.error
    expected = {"wasm": "a\ufffdb"}.get(kind, "a\udcffb")
    assert result.final_answer == expected
