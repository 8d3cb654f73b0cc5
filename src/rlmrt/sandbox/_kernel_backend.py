"""`KernelBackend`: what every out-of-process sandbox does with its kernel.

A backend that runs `rlmrt.sandbox.kernel` somewhere else (a bubblewrap process, a
container, later a pod) only says how the kernel starts, how it is killed, and how
its CPU and memory are watched. Everything on the kernel protocol is here, once:
requests and their timeouts, contexts passed as a file in the sandbox's private
folder (never as a JSON string per step), the wall-time and CPU limits with
kill-and-replace, and the message naming the limit that was hit.

The sandbox's private folder holds the kernel and the contexts; the backend makes it
visible to the kernel read-only at `inside_root`. A kernel on another machine (a pod on
any node) cannot see it: its backend sets `contexts_in_messages` and gets the kernel's
source from `kernel_source`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import json
import os
import shutil
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from rlmrt.errors import SandboxClosedError, SandboxError, UsageError
from rlmrt.sandbox._channel import CallRelay, KernelChannel, KernelTimeout
from rlmrt.sandbox._sweep import folder_prefix, sweep_once
from rlmrt.sandbox.base import ExecResult, HostBridge, Limits, SandboxBackend
from rlmrt.sandbox.kernel import (
    cpu_message,
    pack_bytes,
    timeout_message,
    unpack_bytes,
    variable_name_problem,
)

__all__ = [
    "GRACE_S",
    "START_TIMEOUT_S",
    "KernelBackend",
    "check_variable_name",
    "kernel_source",
]

GRACE_S = 1.0  # after a limit, how long the kernel gets to answer before it is killed
START_TIMEOUT_S = 15.0


@functools.cache
def kernel_source() -> bytes:
    """The kernel's source (`rlmrt.sandbox.kernel`), read once per process."""
    return Path(__file__).with_name("kernel.py").read_bytes()


class KernelBackend(SandboxBackend):
    """Base of the backends whose code runs in a kernel reached over a `KernelChannel`."""

    #: where the private folder appears to the kernel (None: at its host path)
    inside_root: str | None = "/rlmrt"
    #: a kernel killed for a limit is replaced in the background, and the next request
    #: waits for it: for kinds whose start takes seconds (a Pyodide, a pod), so that the
    #: error is not delayed by it
    restart_in_background: bool = False
    #: contexts travel in the ``load_context`` message instead of as a file in the
    #: private folder: for kernels on another machine, which cannot read this one's files
    contexts_in_messages: bool = False

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        self._channel: KernelChannel | None = None
        super().__init__(limits=limits, bridge=bridge)
        self.start_latency_s: float | None = None
        self._closed = False
        self._dir: Path | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        # every context loaded so far, by variable name -> the load_context message that
        # loaded it (its path in the sandbox, or its value): a restarted kernel gets them
        # all back (a session loads `context`, `context_1`, ...)
        self._contexts: dict[str, dict[str, Any]] = {}
        self._killed_for: str | None = None
        # watches the CPU of threads the last execute left running (see `_end_strays`)
        self._idle_watch: asyncio.Task[None] | None = None
        self._idle_killed = False
        self._call_relay: CallRelay | None = None
        self._respawn: asyncio.Task[None] | None = None
        self._defer_spawn = False

    @property
    def bridge(self) -> HostBridge | None:
        return self._bridge

    @bridge.setter
    def bridge(self, bridge: HostBridge | None) -> None:
        # a pooled sandbox is started before the run that uses it exists
        self._bridge = bridge
        if self._channel is not None:
            self._channel.bridge = bridge

    @property
    def call_relay(self) -> CallRelay | None:
        """Set by a sandbox host: the kernel's calls go to its client, not to `bridge`."""
        return self._call_relay

    @call_relay.setter
    def call_relay(self, relay: CallRelay | None) -> None:
        self._call_relay = relay
        if self._channel is not None:
            self._channel.relay = relay

    # -- what a backend provides ------------------------------------------------------

    @abc.abstractmethod
    async def _launch(self, folder: Path) -> KernelChannel:
        """Start the kernel (its private folder is `folder`) and return its channel."""

    @abc.abstractmethod
    async def _terminate(self) -> None:
        """Kill the kernel and everything it started, and wait for it to be gone."""

    async def _on_ready(self, ready: dict[str, Any]) -> None:
        """Called with the kernel's `ready` message."""

    def _cpu_seconds(self) -> float | None:
        """CPU seconds the kernel and its children used so far (None: not measurable)."""
        return None

    def _oom_killed(self) -> bool:
        """Whether the last kernel was killed for memory."""
        return False

    def _after_kill(self) -> None:
        """Reset per-kernel quota state before a replacement kernel starts."""

    def _release(self) -> None:
        """Free what the backend holds beyond the kernel (on close)."""

    def _end_strays(self) -> bool:
        """Kill the processes the code left running (called after each execute); return
        whether threads it started are still running in the kernel. A kind that cannot
        see its kernel's tree keeps nothing running past the execute otherwise."""
        return False

    def _new_folder(self) -> Path:
        # 0700 (mkdtemp's mode): the contexts in it are no other local user's to read
        folder = Path(tempfile.mkdtemp(prefix=folder_prefix(self.kind)))
        (folder / "kernel.py").write_bytes(kernel_source())
        return folder

    def _kernel_config(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "timeout_s": limits.exec_timeout_s,
            "cpu_s": limits.cpu_s,
            "memory_mb": limits.memory_mb,
            "output_bytes": limits.output_bytes,
            "rlimits": {"RLIMIT_CORE": 0},
        }

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        async with self._get_lock():
            await self._ensure_started()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._respawn is not None:
            self._respawn.cancel()
            with contextlib.suppress(BaseException):
                await self._respawn
            self._respawn = None
        await self._stop()
        self._release()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError(f"the {self.kind} sandbox is closed")

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _folder(self) -> Path:
        if self._dir is None:
            sweep_once()  # what killed hosts left: their folders hold copies of contexts
            self._dir = self._new_folder()
        return self._dir

    def _path_inside(self, filename: str) -> str:
        if self.inside_root is None:
            return str(self._folder() / filename)
        return f"{self.inside_root}/{filename}"

    async def _ensure_started(self) -> KernelChannel:
        if self._channel is None or self._channel.broken:
            await self._stop()
            await self._spawn()
        assert self._channel is not None
        return self._channel

    async def _spawn(self) -> None:
        if self._defer_spawn:
            self._respawn = asyncio.create_task(self._start_again())
            return
        started = time.perf_counter()
        self._channel = await self._launch(self._folder())
        self._channel.relay = self._call_relay
        try:
            ready = await self._channel.receive(timeout=START_TIMEOUT_S)
            if ready.get("op") != "ready":
                raise SandboxError(f"the kernel did not start properly: {ready!r:.200}")
            await self._on_ready(ready)
        except BaseException:
            await self._stop()
            raise
        self.start_latency_s = time.perf_counter() - started
        for message in self._contexts.values():
            await self._request(message)

    async def _start_again(self) -> None:
        async with self._get_lock():
            if not self._closed:
                with contextlib.suppress(SandboxError):  # the next request reports it
                    await self._ensure_started()

    async def _stop(self) -> None:
        watch = self._stop_idle_watch()
        if watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await watch  # gone before the loop may close
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.aclose()
        await self._terminate()

    # -- requests -------------------------------------------------------------------------

    async def _request(self, msg: dict[str, Any]) -> Any:
        channel = await self._ensure_started()
        reply = await channel.request(msg, timeout=START_TIMEOUT_S)
        if reply.get("op") == "error":
            raise UsageError(str(reply.get("error")))
        return reply.get("value")

    async def load_context(self, context: Any, *, name: str = "context") -> None:
        self._check_open()
        check_variable_name(name)
        if self.contexts_in_messages:
            async with self._get_lock():
                await self._load_context(_context_message(context, name, self.kind))
            return
        if isinstance(context, str):
            data, suffix = context.encode("utf-8", "surrogateescape"), ".txt"
        elif isinstance(context, (bytes, bytearray)):
            data, suffix = bytes(context), ".bin"
        else:
            text, packed = _to_json(context, "a context", self.kind)
            data, suffix = text.encode("utf-8"), ".bjson" if packed else ".json"
        async with self._get_lock():
            filename = f"{name}{suffix}"
            target = self._folder() / filename
            target.write_bytes(data)
            target.chmod(0o600)
            folder = self._folder().stat()
            if folder.st_uid != os.getuid():  # root made it for the kernel's uid
                os.chown(target, folder.st_uid, folder.st_gid)
            path = self._path_inside(filename)
            await self._load_context({"op": "load_context", "name": name, "path": path})

    async def _load_context(self, message: dict[str, Any]) -> None:
        self._contexts[str(message["name"])] = message  # sent again to a restarted kernel
        await self._request(message)

    async def set_variable(self, name: str, value: Any) -> None:
        self._check_open()
        check_variable_name(name)
        if isinstance(value, types.ModuleType):
            raise UsageError("modules cannot be put into the sandbox")
        text, packed = _to_json(value, "a variable", self.kind)
        message = {"op": "set", "name": name, "value": json.loads(text), "bytes": packed}
        async with self._get_lock():
            await self._request(message)

    async def get_variable(self, name: str, *, rendered: bool = False) -> Any:
        self._check_open()
        async with self._get_lock():
            request = {"op": "get", "name": name, "rendered": rendered}
            return unpack_bytes(await self._request(request))

    async def list_variables(self) -> dict[str, str]:
        self._check_open()
        async with self._get_lock():
            return dict(await self._request({"op": "list"}))

    # -- execute --------------------------------------------------------------------------

    async def execute(self, code: str) -> ExecResult:
        self._check_open()
        if not isinstance(code, str):
            raise UsageError(f"code must be a str, got {type(code).__name__}")
        async with self._get_lock():
            self._check_open()
            return await self._execute(code)

    async def _execute(self, code: str) -> ExecResult:
        self._stop_idle_watch()
        notice = ""
        if self._idle_killed:
            self._idle_killed = False
            notice = (
                f"{cpu_message(self.limits.cpu_s)} in threads the previous code left running;"
                " the sandbox was restarted and its variables were lost\n"
            )
        channel = await self._ensure_started()
        started = time.perf_counter()
        timeout = self.limits.exec_timeout_s
        self._killed_for = None
        watcher = asyncio.create_task(self._watch_cpu()) if self.limits.cpu_s else None
        try:
            reply = await channel.request(
                {"op": "execute", "code": code},
                timeout=timeout + GRACE_S if timeout is not None else None,
            )
        except KernelTimeout:
            return await self._restart("timeout_s", None, started)
        except SandboxError as exc:
            return await self._restart(self._killed_for, exc, started)
        finally:
            if watcher is not None:
                watcher.cancel()
        if self._end_strays() and self.limits.cpu_s is not None:
            self._idle_watch = asyncio.create_task(self._watch_idle_cpu(self.limits.cpu_s))
        error = reply.get("error")
        stderr = notice + str(reply.get("stderr") or "") + (str(error) if error else "")
        return ExecResult(
            stdout=str(reply.get("stdout") or ""),
            stderr=stderr,
            error=error,
            duration_s=time.perf_counter() - started,
            final_answer=reply.get("final"),
            final_set=bool(reply.get("final_set")),
            display=reply.get("display"),
        )

    async def _watch_cpu(self) -> None:
        """Kill the kernel when it used `cpu_s` (+ grace) CPU seconds in this execute.

        The kernel's own ITIMER_PROF stops plain Python first; this catches code that
        blocks the timer (C calls, child processes).
        """
        cpu_s = self.limits.cpu_s
        base = self._cpu_seconds()
        if cpu_s is None or base is None:
            return
        while True:
            await asyncio.sleep(0.1)
            used = self._cpu_seconds()
            if used is not None and used - base > cpu_s + GRACE_S:
                self._killed_for = "cpu_s"
                await self._terminate()
                return

    async def _watch_idle_cpu(self, cpu_s: float) -> None:
        """Kill the kernel when threads left running after an execute use `cpu_s` CPU
        seconds before the next one: `cpu_s` bounds what code starts, not only the block.
        The next execute starts a fresh kernel and says why."""
        base = self._cpu_seconds()
        if base is None:
            return
        while True:
            await asyncio.sleep(0.25)
            used = self._cpu_seconds()
            if used is not None and used - base > cpu_s:
                break
        async with self._get_lock():  # an execute that starts now cancels this task first
            self._idle_watch = None  # _stop must not cancel this task
            self._idle_killed = True
            await self._stop()

    def _stop_idle_watch(self) -> asyncio.Task[None] | None:
        watch, self._idle_watch = self._idle_watch, None
        if watch is not None:
            watch.cancel()
        return watch

    async def _restart(
        self, reason: str | None, exc: SandboxError | None, started: float
    ) -> ExecResult:
        limits = self.limits
        if reason == "timeout_s":
            message = timeout_message(limits.exec_timeout_s) + " and did not stop"
        elif reason == "cpu_s":
            message = cpu_message(limits.cpu_s)
        elif self._oom_killed():
            message = (
                f"MemoryError: the sandbox ran out of memory (memory_mb={limits.memory_mb} limit)"
            )
        else:
            message = f"SandboxError: {exc}"
        await self._stop()
        self._after_kill()
        self._defer_spawn = self.restart_in_background
        try:
            await self._spawn()
        finally:
            self._defer_spawn = False
        message += "; the sandbox was restarted and its variables were lost"
        if self._contexts:
            names = ", ".join(f"`{name}`" for name in self._contexts)
            message += f" ({names} {'was' if len(self._contexts) == 1 else 'were'} loaded again)"
        return ExecResult(stderr=message, error=message, duration_s=time.perf_counter() - started)


def check_variable_name(name: Any) -> None:
    """A `UsageError` unless `name` may name a variable in the sandbox."""
    problem = variable_name_problem(name)
    if problem is not None:
        raise UsageError(problem)


def _context_message(context: Any, name: str, kind: str) -> dict[str, Any]:
    """The ``load_context`` message carrying `context` itself: a str as is, bytes and
    JSON data holding bytes packed (`pack_bytes`), as ``set`` sends a value. The kernel
    ends with the value it would have read from the file. JSON data is copied (through
    its text): what a restarted kernel gets again is the context as it was loaded."""
    message: dict[str, Any] = {"op": "load_context", "name": name}
    if isinstance(context, str):
        return {**message, "value": context}
    if isinstance(context, (bytes, bytearray)):
        return {**message, "value": pack_bytes(context), "bytes": True}
    text, packed = _to_json(context, "a context", kind)
    return {**message, "value": json.loads(text), "bytes": packed}


def _to_json(value: Any, what: str, kind: str) -> tuple[str, bool]:
    """`value` as JSON text, and whether bytes in it had to be packed (`pack_bytes`)."""
    try:
        return json.dumps(value, ensure_ascii=False), False
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(pack_bytes(value), ensure_ascii=False), True
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{what} put into the {kind} sandbox must be JSON data"
            f" (str, bytes, number, bool, None, list, dict): {exc}"
        ) from exc
