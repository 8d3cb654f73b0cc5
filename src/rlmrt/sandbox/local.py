"""`LocalSandbox`: sandboxed Python in this process, under RestrictedPython.

The REPL is the kernel's (`rlmrt.sandbox.kernel.Repl`: cells, display, errors,
helpers), with RestrictedPython plus the additions of `_policy` as its compile hook.
Code runs on one long-lived worker thread per sandbox, with a namespace that persists
between executes. The host's event loop stays free while code runs; `llm_query` and friends
call the `HostBridge` coroutines on that loop and wait for them.

Security measures (details in `_guards`, `_safe_modules`, `_limits`):

- no names or attributes starting with `_`, no frame/code/traceback attributes, no
  module objects: allowed modules are read-only proxies holding vetted attributes;
- builtins without `open`, `exec`, `eval`, `compile`, `globals`, `locals`, `vars`,
  `input`, `breakpoint`, `help`, `memoryview`; `type()` has one argument only;
  `getattr`/`setattr` go through the guards; `str.format` cannot walk attributes;
- writes only to plain containers and to instances of classes the code defined;
- a time limit checked by ticks inserted in every loop, comprehension and function,
  backed by a watchdog that raises into the worker thread; a memory limit enforced
  by size estimates before big one-shot allocations and by watching the process RSS.

Residual risks, stated plainly: in-process isolation is best effort. The process
sandbox is the real isolation boundary; use it for untrusted code.

- A single long C call holds the GIL and cannot be interrupted: catastrophic regex
  backtracking, sorting or hashing huge data, `x in range(10**15)` with a non-int.
  It freezes the host's threads (the event loop too) until it returns; the timeout
  is reported afterwards. C calls whose output is a large multiple of an input
  already in memory (e.g. splitting a 100 MB string into 10**8 pieces) are not all
  estimated; the RSS watchdog only acts when control returns to Python.
- Memory is measured as growth of the whole process's RSS during an execute, so
  other threads of the host count against it, and memory kept between executes is
  not counted. Big integers are capped at 1 MB per result because their arithmetic
  cannot be interrupted.
- After a timeout the worker thread is abandoned if it does not stop within the
  grace period (a fresh one serves the next execute); an abandoned thread keeps
  running until its next tick or bytecode boundary and shares the namespace.
- RestrictedPython and the guards are a policy on top of CPython: a CPython bug or a
  reachable object we did not vet could still lead out. The allow-list is kept
  small for that reason. Known soft spots: special methods the code defines
  (`__eq__`, `__init__`, ...) run when host code touches its objects (still as
  restricted code); mutable state reachable through public attributes of allowed
  objects (beyond module-level containers, which are handed out as copies) can be
  changed by their methods.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import queue
import sys
import threading
import time
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from rlmrt.errors import RLMError, SandboxClosedError, UsageError
from rlmrt.sandbox._guards import SANDBOX_MODULE, Guards, TypeShim
from rlmrt.sandbox._limits import (
    Clock,
    SandboxMemoryExceeded,
    SandboxTimeout,
    human_bytes,
    inject,
)
from rlmrt.sandbox._policy import restrict
from rlmrt.sandbox._safe_modules import ModuleProxy
from rlmrt.sandbox.base import (
    Diagnosis,
    ExecResult,
    HostBridge,
    Limits,
    QuotaStatus,
    SandboxBackend,
    call_host,
)
from rlmrt.sandbox.kernel import (
    Cell,
    Repl,
    exception_line,
    pack_bytes,
    render_value,
    timeout_message,
    variable_name_problem,
)

__all__ = ["LocalSandbox"]

_GRACE_S = 0.7  # after the deadline, how long the worker gets to unwind before it is abandoned
_POLL_S = 0.02  # how often the watchdog reads the RSS while code runs
_REINJECT_S = 0.1
_COMPILE_CACHE = 256
PROBE_TIMEOUT_S = 10.0  # of the cell `diagnose` runs


class _Output:
    """The captured stdout of one execute, cut at `limit` bytes."""

    __slots__ = ("dropped", "limit", "parts", "size")

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.limit = limit

    def write(self, text: str) -> None:
        n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        room = self.limit - self.size
        if n <= room:
            self.parts.append(text)
            self.size += n
        elif room <= 0:
            self.dropped += n
        else:
            head = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
            self.parts.append(head)
            self.size = self.limit
            self.dropped += n - len(head.encode("utf-8", "surrogatepass"))

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n... [output truncated: {self.dropped} more bytes]"
        return text


class _ExecState(Cell):
    """One execute, shared by the host coroutine and the worker thread."""

    def __init__(self, code: types.CodeType, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.out = _Output(limit)
        super().__init__(self.out.write)
        self.code = code
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.exc: BaseException | None = None
        self.in_user = False
        self.injected = False
        self.posted = False
        self.timed_out = False
        self.memory_exceeded = False
        self.memory_growth = 0


# The idents of live worker threads: what the code there leaves unraisable is not the
# host's (see _quiet_worker_unraisables).
_WORKER_THREADS: set[int] = set()


def _quiet_worker_unraisables() -> None:
    """Keep the errors Python cannot raise in a worker thread ("Exception ignored in ...",
    e.g. a recursion bomb's frames hitting the recursion limit again while a timeout
    unwinds them) out of the host's `sys.unraisablehook`: they belong to the sandboxed
    code, whose cell already reports its error. Other threads' go to the hook that was
    there. Called before each execute, so a hook installed later (a test runner's) is
    wrapped too."""
    current = sys.unraisablehook
    if getattr(current, "rlmrt_filter", False):
        return

    def hook(unraisable: Any) -> None:
        if threading.get_ident() in _WORKER_THREADS:
            return
        current(unraisable)

    hook.rlmrt_filter = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


class _Worker:
    """The long-lived thread that runs the code of one sandbox."""

    def __init__(self, run: Callable[[_ExecState], None], finish: Callable[..., None]) -> None:
        self.jobs: queue.SimpleQueue[_ExecState | None] = queue.SimpleQueue()
        self._run = run
        self._finish = finish
        self.thread = threading.Thread(target=self._main, name="rlmrt-local-sandbox", daemon=True)
        self.thread.start()
        assert self.thread.ident is not None
        self.ident: int = self.thread.ident

    def _main(self) -> None:
        _WORKER_THREADS.add(threading.get_ident())
        try:
            self._serve()
        finally:
            _WORKER_THREADS.discard(threading.get_ident())

    def _serve(self) -> None:
        while True:
            job: _ExecState | None = None
            try:
                job = self.jobs.get()
                if job is None:
                    return
                self._run(job)
            except BaseException as exc:  # noqa: BLE001 - a late asynchronous interrupt
                self._recover(job, exc)

    def _recover(self, job: _ExecState | None, exc: BaseException) -> None:
        while True:
            try:
                if job is not None and not job.posted:
                    self._finish(job, exc)
                return
            except BaseException as again:  # noqa: BLE001 - yet another interrupt
                exc = again


class _LocalRepl(Repl):
    """The kernel's REPL in this process: host calls go through the sandbox's bridge
    from the worker thread; the cell is the execute the calling thread still owns."""

    hidden_types = (ModuleProxy,)

    def __init__(self, sandbox: LocalSandbox, namespace: dict[str, Any], limit: int) -> None:
        self._sandbox = sandbox
        super().__init__(namespace, limit)

    def call(self, name: str, args: dict[str, Any]) -> Any:
        return self._sandbox._call_host(name, args)

    def cell(self) -> Cell:
        return self._sandbox._current()

    def type_name(self, value: Any) -> str:
        return _type_name(value)


class _Printer:
    """What `print` writes to inside the sandbox (RestrictedPython's `_print_` hook)."""

    __slots__ = ("_sandbox",)

    def __init__(self, sandbox: LocalSandbox) -> None:
        self._sandbox = sandbox

    def _call_print(
        self,
        *objects: Any,
        sep: str | None = " ",
        end: str | None = "\n",
        file: Any = None,
        flush: bool = False,
    ) -> None:
        sandbox = self._sandbox
        state = sandbox._current()
        text = (" " if sep is None else sep).join([str(o) for o in objects])
        text += "\n" if end is None else end
        if file is None:
            state.out.write(text)
        else:
            sandbox._guards.getattr_(file, "write")(text)

    def __call__(self) -> str:
        return "".join(self._sandbox._current().out.parts)


class LocalSandbox(SandboxBackend):
    """Runs code in this process under RestrictedPython (see the module docstring)."""

    kind = "local"

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        return [
            # best-effort only: a C-level operation (a regex, str() of a huge list) holds the
            # GIL and runs past both, freezing the host; use the process kind for untrusted code
            QuotaStatus(
                "exec_timeout_s",
                False,
                "best-effort: ticks in Python code and a watchdog thread; C-level operations"
                " run past it and block the host",
            ),
            QuotaStatus(
                "memory_mb",
                False,
                "best-effort: size estimates of big allocations and the host's RSS; C-level"
                " operations grow the host past it",
            ),
            QuotaStatus("output_bytes", True, "cut while captured"),
            # code here can start no process and open no file: those limits hold a fortiori
            QuotaStatus("processes", True, "code can start no process"),
            QuotaStatus("file_bytes", True, "code can open no file"),
            QuotaStatus("cpu_s", False, "not measured per thread; the time limit bounds it"),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        """Runs one cell for real."""
        from rlmrt.sandbox.facade import Sandbox

        started = time.perf_counter()
        try:
            with Sandbox(cls.kind, exec_timeout_s=PROBE_TIMEOUT_S) as sandbox:
                result = sandbox.execute("print(1+1)")
        except (RLMError, ImportError, OSError) as exc:
            return Diagnosis(status="fail", detail=exception_line(exc))
        took = time.perf_counter() - started
        if result.error or result.stdout.strip() != "2":
            got = result.error or repr(result.stdout)
            return Diagnosis(status="fail", detail=f"print(1+1) gave {got}")
        detail = f"print(1+1) -> 2 in {took:.2f}s"
        return Diagnosis(status="ok", detail=detail, quotas=(*cls.quota_report(),))

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        super().__init__(limits=limits, bridge=bridge)
        self._closed = False
        self._clock = Clock(self.limits.memory_mb)
        self._guards = Guards(self._clock, self._write_output)
        self._state: _ExecState | None = None
        self._worker: _Worker | None = None
        self._inject_lock = threading.Lock()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._compiled: OrderedDict[str, types.CodeType] = OrderedDict()
        printer = _Printer(self)
        self._globals: dict[str, Any] = {
            "__builtins__": self._guards.builtins(self._guards.modules.import_),
            "__name__": SANDBOX_MODULE,
            "__metaclass__": type,
            "_tick_": self._clock.tick,
            "_print_": lambda _getattr=None: printer,
        }
        self._repl = _LocalRepl(self, self._globals, self.limits.output_bytes)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        self._ensure_worker()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.jobs.put(None)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("the local sandbox is closed")

    def _ensure_worker(self) -> _Worker:
        if self._worker is None:
            self._worker = _Worker(self._run, self._finish)
        return self._worker

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    # -- variables ----------------------------------------------------------------------

    async def set_variable(self, name: str, value: Any) -> None:
        self._check_open()
        problem = variable_name_problem(name)
        if problem is not None:
            raise UsageError(problem)
        if isinstance(value, types.ModuleType):
            raise UsageError("modules cannot be put into the sandbox")
        async with self._get_lock():
            self._globals[name] = value

    async def get_variable(self, name: str, *, rendered: bool = False) -> Any:
        self._check_open()
        async with self._get_lock():
            names = self._user_variables()
            if name not in names:
                raise UsageError(
                    f"no variable named {name!r} in the sandbox;"
                    f" variables: {', '.join(names) or '(none)'}"
                )
            value = names[name]
            if rendered and not _travels(value):
                return render_value(value)
            return value

    async def list_variables(self) -> dict[str, str]:
        self._check_open()
        async with self._get_lock():
            return {name: _type_name(v) for name, v in self._user_variables().items()}

    def _user_variables(self) -> dict[str, Any]:
        return self._repl.user_variables()

    # -- execute ------------------------------------------------------------------------

    async def execute(self, code: str) -> ExecResult:
        self._check_open()
        if not isinstance(code, str):
            raise UsageError(f"code must be a str, got {type(code).__name__}")
        async with self._get_lock():
            self._check_open()
            return await self._execute(code)

    async def _execute(self, code: str) -> ExecResult:
        started = time.perf_counter()
        try:
            compiled = self._compile(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            return _failed(self._repl.compile_error(exc), started)
        worker = self._ensure_worker()
        _quiet_worker_unraisables()
        state = _ExecState(compiled, asyncio.get_running_loop(), self.limits.output_bytes)
        self._repl.prepare()
        self._clock.arm(self.limits.exec_timeout_s, worker.ident)
        self._state = state
        worker.jobs.put(state)
        await self._supervise(state, worker)
        return self._result(state, started)

    def _compile(self, code: str) -> types.CodeType:
        compiled = self._compiled.get(code)
        if compiled is not None:
            self._compiled.move_to_end(code)
            return compiled
        compiled = self._repl.compile(code, restrict)
        self._compiled[code] = compiled
        if len(self._compiled) > _COMPILE_CACHE:
            self._compiled.popitem(last=False)
        return compiled

    def _run(self, state: _ExecState) -> None:
        """Worker thread: run one cell."""
        exc: BaseException | None = None
        try:
            state.in_user = True
            exec(state.code, self._globals)
        except BaseException as caught:  # noqa: BLE001 - becomes ExecResult.error
            exc = caught
        self._finish(state, exc)

    def _finish(self, state: _ExecState, exc: BaseException | None) -> None:
        with self._inject_lock:
            state.in_user = False
            if state.injected:
                _absorb_pending_interrupt()
        if state.posted:
            return
        state.exc = exc
        state.posted = True
        try:
            state.loop.call_soon_threadsafe(_resolve, state.future)
        except RuntimeError:  # the host loop is gone; nobody waits for this result
            return

    async def _supervise(self, state: _ExecState, worker: _Worker) -> None:
        """Host side: wait for the worker; enforce the deadline and the memory limit."""
        timeout, watch_memory = self.limits.exec_timeout_s, bool(self._clock.rss_limit)
        if timeout is None and not watch_memory:
            await state.future
            return
        loop = state.loop
        deadline = loop.time() + timeout if timeout is not None else None
        kill_at: float | None = None
        interrupt: type[BaseException] = SandboxTimeout
        while not state.future.done():
            now = loop.time()
            wait = _POLL_S if watch_memory else 3600.0
            if kill_at is not None:
                wait = min(wait, _REINJECT_S, max(0.0, kill_at - now))
            elif deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            await asyncio.wait((state.future,), timeout=wait)
            if state.future.done():
                break
            now = loop.time()
            if kill_at is None and watch_memory and self._clock.over_memory():
                state.memory_exceeded = True
                state.memory_growth = self._clock.growth()
                self._clock.memory_exceeded = True
                self._clock.n = 0
                interrupt, kill_at = SandboxMemoryExceeded, now + _GRACE_S
            elif kill_at is None and deadline is not None and now >= deadline:
                state.timed_out = True
                self._clock.expire()
                interrupt, kill_at = SandboxTimeout, now + _GRACE_S
            if kill_at is not None:
                self._interrupt(state, worker, interrupt)
                if now >= kill_at:
                    self._abandon(worker)
                    return

    def _interrupt(self, state: _ExecState, worker: _Worker, exc: type[BaseException]) -> None:
        with self._inject_lock:
            if state.in_user:
                state.injected = True
                inject(worker.ident, exc)

    def _abandon(self, worker: _Worker) -> None:
        """Give up on a worker stuck past the grace period; the next execute gets a new one."""
        if self._worker is worker:
            self._worker = None
        worker.jobs.put(None)
        self._state = None

    def _result(self, state: _ExecState, started: float) -> ExecResult:
        exc = state.exc
        error: str | None = None
        if state.timed_out or isinstance(exc, SandboxTimeout):
            error = self._repl.format_error(exc, timeout_message(self.limits.exec_timeout_s))
        elif state.memory_exceeded or isinstance(exc, SandboxMemoryExceeded):
            growth = state.memory_growth or self._clock.growth()
            error = self._repl.format_error(
                exc,
                f"MemoryError: execution exceeded the memory limit"
                f" (memory_mb={self.limits.memory_mb}); the process grew by {human_bytes(growth)}",
            )
        elif exc is not None:
            error = self._repl.format_error(exc)
        return ExecResult(
            stdout=state.out.getvalue(),
            stderr=error or "",
            error=error,
            duration_s=time.perf_counter() - started,
            final_answer=state.final,
            final_set=state.final_set,
            display=state.display,
        )

    # -- what the code sees -------------------------------------------------------------

    def _current(self) -> _ExecState:
        state = self._state
        if state is None or threading.get_ident() != self._clock.owner:
            raise SandboxTimeout  # an abandoned worker: stop it
        return state

    def _write_output(self, text: str) -> None:
        self._current().out.write(text)

    def _call_host(self, name: str, args: dict[str, Any]) -> Any:
        """Worker thread: run a host function on the host's loop and wait for it,
        ticking so that the limits still hold while it runs."""
        state = self._current()
        future = asyncio.run_coroutine_threadsafe(call_host(self.bridge, name, args), state.loop)
        error: BaseException
        while True:
            try:
                return future.result(timeout=_POLL_S)
            except concurrent.futures.TimeoutError as exc:  # not the builtin before 3.11
                if future.done():
                    error = exc
                    break
                try:
                    self._clock.tick()
                except BaseException:
                    future.cancel()
                    raise
            except BaseException as exc:
                if not future.done():  # interrupted by the watchdog while waiting
                    future.cancel()
                    raise
                error = exc
                break
        # the host's exception, without the host frames that raised it
        raise error.with_traceback(None)


def _absorb_pending_interrupt() -> None:
    """Let an interrupt that arrived after the user's code ended land here, harmlessly.

    (Clearing it with PyThreadState_SetAsyncExc(id, NULL) would leave the
    interpreter's "async exception pending" flag set, slowing every thread.)
    """
    try:
        for _ in range(8):  # backward jumps are where pending interrupts are raised
            pass
    except BaseException:  # noqa: BLE001, S110 - the interrupt is expected and meant to end here
        pass


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _failed(message: str, started: float) -> ExecResult:
    return ExecResult(stderr=message, error=message, duration_s=time.perf_counter() - started)


def _type_name(value: Any) -> str:
    return "type" if isinstance(value, TypeShim) else type(value).__name__


def _travels(value: Any) -> bool:
    """Whether `value` could leave an out-of-process sandbox as data (JSON, bytes
    packed), as `get_variable` on the kernel kinds decides."""
    try:
        json.dumps(pack_bytes(value), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True
