"""`ProcessSandbox`: the kernel in its own process, isolated by bubblewrap.

How the kernel is started (``kind = "process"``):

- ``bwrap`` with fresh pid, network, ipc and uts namespaces (no network at all),
  ``--die-with-parent``, ``--new-session``, ``--clearenv`` (only PATH, HOME, LANG are
  set), read-only binds of ``/usr`` (plus the ``/lib*``, ``/bin`` links),
  ``/etc/ld.so.cache`` and the base interpreter's own folder (``sys.base_prefix``,
  not the venv), empty tmpfs ``/tmp`` and ``/home/sandbox``, a minimal ``/proc`` and
  ``/dev``, and a private folder holding the kernel and the context, read-only.
- The unprivileged uid. When the host runs as root, bubblewrap cannot be started as
  an unprivileged user here: the interpreter lives under ``/root`` (mode 0700), which
  uid 65534 cannot traverse to bind it, and ``--ro-bind-fd`` resolves the path again.
  So bwrap runs as root *without* a user namespace and the kernel's first act, before
  any user code, is ``setgroups([])``, ``setgid(65534)``, ``setuid(65534)``: a real
  uid of 65534 on the host (the tests read ``/proc/<pid>/status`` to check), with all
  capabilities gone and ``no_new_privs`` set by bwrap. A non-root host lets bwrap
  make an unprivileged user namespace instead and the kernel keeps the host's uid.
- Quotas: wall time (a SIGALRM timer in the kernel raises into the code, so
  variables survive; if no answer comes 1 s after the limit the host kills the
  process group and starts a fresh kernel); CPU (ITIMER_PROF in the kernel, the host
  summing the tree's CPU from /proc and killing at ``cpu_s`` + 1 s, a generous
  RLIMIT_CPU cap); memory (RLIMIT_AS, plus a cgroup v1 memory child when writable);
  processes (cgroup v1 ``pids.max``; RLIMIT_NPROC means nothing for root); file size
  (RLIMIT_FSIZE); output (cut in the kernel; frames capped on the host).
- Cgroups: a tiny ``/bin/sh`` wrapper writes its own pid into the sandbox's
  ``cgroup.procs`` files and then execs bwrap, so the whole tree is counted from the
  start (no ``preexec_fn``: it is unsafe in threaded hosts and forces a full fork).
  The child cgroups are removed on close; when they cannot be made (no writable
  cgroup v1), `processes` is reported as not enforced.
- The kernel runs as bytecode (``kernel.pyc``, compiled once per host process for
  the base interpreter, which has this interpreter's version): ~8 ms less per start.
- Without bubblewrap the kernel runs as a plain subprocess with rlimits and cgroups
  only: no filesystem/network isolation and no uid drop. `quota_report()` says so and
  it is logged once at WARNING on the ``rlmrt`` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import itertools
import json
import keyword
import logging
import marshal
import os
import shutil
import signal
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.errors import SandboxClosedError, SandboxError, UsageError
from rlmrt.sandbox import _proc
from rlmrt.sandbox._channel import KernelChannel, KernelTimeout
from rlmrt.sandbox.base import ExecResult, HostBridge, Limits, SandboxBackend

__all__ = ["ProcessSandbox", "QuotaStatus", "bubblewrap_available", "quota_report"]

log = logging.getLogger("rlmrt")

BWRAP = "/usr/bin/bwrap"
SANDBOX_UID = 65534
GRACE_S = 1.0  # after a limit, how long the kernel gets to answer before it is killed
START_TIMEOUT_S = 15.0
_MB = 1 << 20
_AS_HEADROOM = 64 * _MB  # the interpreter's own mappings, on top of memory_mb
# above the RLIMIT_AS of one process, so one process hits RLIMIT_AS (a MemoryError the
# kernel survives) first; the cgroup bounds the whole tree
_CGROUP_HEADROOM = _AS_HEADROOM + 32 * _MB
_KERNEL_PROCESSES = 3  # bwrap, bwrap's pid 1 in the namespace, the kernel
_HELPERS_ALL = ("llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched")
_RESERVED = (*_HELPERS_ALL, "FINAL", "FINAL_VAR", "SHOW_VARS")
_ids = itertools.count(1)
_JOIN_AND_EXEC = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done;'
    ' exec "$@"'
)
_warned = False


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """Whether one limit or protection is enforced on this host, and how."""

    name: str
    enforced: bool
    how: str


def bubblewrap_available() -> bool:
    return os.path.isfile(BWRAP) and os.access(BWRAP, os.X_OK)


def quota_report() -> list[QuotaStatus]:
    """What the process sandbox enforces on this host (for `rlm doctor`)."""
    bwrap = bubblewrap_available()
    root = os.getuid() == 0
    memory_cg = _proc.cgroup_writable("memory")
    pids_cg = _proc.cgroup_writable("pids")
    if bwrap:
        isolation = "bubblewrap: own pid/net/ipc/uts namespaces, read-only /usr and interpreter"
        uid = (
            f"the kernel drops to uid {SANDBOX_UID} before running code"
            if root
            else f"runs as uid {os.getuid()} in a user namespace"
        )
    else:
        isolation = f"bubblewrap not found at {BWRAP}: plain subprocess, no isolation"
        uid = "runs as root: no uid drop without bubblewrap" if root else "runs as the host user"
    return [
        QuotaStatus("isolation", bwrap, isolation),
        QuotaStatus("network", bwrap, "no network namespace" if bwrap else "host network"),
        QuotaStatus("uid", bwrap or not root, uid),
        QuotaStatus("timeout_s", True, "SIGALRM in the kernel; kill and restart 1 s later"),
        QuotaStatus("cpu_s", True, "ITIMER_PROF in the kernel, host /proc tree CPU, RLIMIT_CPU"),
        QuotaStatus(
            "memory_mb",
            True,
            "RLIMIT_AS" + (" + cgroup v1 memory.limit_in_bytes" if memory_cg else ""),
        ),
        QuotaStatus(
            "processes",
            pids_cg,
            "cgroup v1 pids.max" if pids_cg else "no writable pids cgroup (RLIMIT_NPROC is moot)",
        ),
        QuotaStatus("file_bytes", True, "RLIMIT_FSIZE"),
        QuotaStatus("output_bytes", True, "cut in the kernel; frames capped on the host"),
    ]


class ProcessSandbox(SandboxBackend):
    """Runs code in a kernel process under bubblewrap (see the module docstring)."""

    kind = "process"

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        super().__init__(limits=limits, bridge=bridge)
        enforced = {"timeout_s", "memory_mb", "output_bytes", "cpu_s", "file_bytes"}
        if _proc.cgroup_writable("pids"):
            enforced.add("processes")
        self.enforces = frozenset(enforced)
        self.isolated = bubblewrap_available()
        self.start_latency_s: float | None = None
        self.kernel_host_pid: int | None = None
        self._closed = False
        self._dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._channel: KernelChannel | None = None
        self._cgroups: _proc.CgroupSet | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._context: tuple[str, str] | None = None  # (name, path in the sandbox)
        self._killed_for: str | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._check_open()
        async with self._get_lock():
            await self._ensure_started()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._stop()
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxClosedError("the process sandbox is closed")

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _ensure_started(self) -> KernelChannel:
        if self._channel is None or self._channel.broken:
            await self._stop()
            await self._spawn()
        assert self._channel is not None
        return self._channel

    def _prepare(self) -> Path:
        global _warned
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="rlmrt-process-"))
            (self._dir / "kernel.pyc").write_bytes(_kernel_pyc())
            if os.getuid() == 0 and self.isolated:
                os.chown(self._dir, SANDBOX_UID, SANDBOX_UID)  # readable after the uid drop
            if not self.isolated and not _warned:
                _warned = True
                log.warning(
                    "bubblewrap not found at %s: the process sandbox runs code in a plain "
                    "subprocess with resource limits only (no filesystem, network or uid "
                    "isolation)",
                    BWRAP,
                )
        if self._cgroups is None:
            limits = self.limits
            memory = limits.memory_mb * _MB + _CGROUP_HEADROOM if limits.memory_mb else None
            pids = limits.processes + _KERNEL_PROCESSES if limits.processes else None
            name = f"rlmrt-{os.getpid()}-{next(_ids)}"
            self._cgroups = _proc.CgroupSet(name, memory_bytes=memory, pids_max=pids)
        return self._dir

    def _kernel_config(self) -> dict[str, Any]:
        limits = self.limits
        rlimits: dict[str, int] = {"RLIMIT_CORE": 0}
        if limits.memory_mb:
            rlimits["RLIMIT_AS"] = limits.memory_mb * _MB + _AS_HEADROOM
        if limits.file_bytes:
            rlimits["RLIMIT_FSIZE"] = limits.file_bytes
        if limits.cpu_s:
            rlimits["RLIMIT_CPU"] = int(limits.cpu_s * 20 + 300)
        config: dict[str, Any] = {
            "timeout_s": limits.timeout_s,
            "cpu_s": limits.cpu_s,
            "memory_mb": limits.memory_mb,
            "output_bytes": limits.output_bytes,
            "rlimits": rlimits,
        }
        if self.isolated and os.getuid() == 0:
            config["uid"] = config["gid"] = SANDBOX_UID
        return config

    def _argv(self, folder: Path) -> list[str]:
        python = _base_python()
        config = json.dumps(self._kernel_config())
        if not self.isolated:
            return [python, "-I", "-S", str(folder / "kernel.pyc"), config]
        args = [BWRAP, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
        if os.getuid() != 0:
            args.append("--unshare-user")
        args += ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
        args += ["--setenv", "HOME", "/home/sandbox", "--setenv", "LANG", "C.UTF-8"]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        prefix = Path(sys.base_prefix).resolve()
        if not prefix.is_relative_to("/usr"):
            for parent in reversed(prefix.parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", str(prefix), str(prefix)]
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += [
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
            "--perms",
            "0777",
            "--tmpfs",
            "/home/sandbox",
        ]
        args += ["--ro-bind", str(folder), "/rlmrt", "--chdir", "/home/sandbox"]
        return [*args, python, "-I", "-S", "/rlmrt/kernel.pyc", config]

    async def _spawn(self) -> None:
        folder = self._prepare()
        assert self._cgroups is not None
        argv = self._argv(folder)
        procs_files = self._cgroups.procs_files()
        if procs_files:
            # a tiny shell joins the cgroups and then execs: every process the kernel
            # starts is counted from the first instruction on, and Python can still
            # vfork (a preexec_fn would force a full fork of this process)
            argv = [
                "/bin/sh",
                "-c",
                _JOIN_AND_EXEC,
                "sh",
                str(len(procs_files)),
                *procs_files,
                *argv,
            ]
        started = time.perf_counter()
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=env,
                cwd=str(folder),
            )
        except OSError as exc:
            raise SandboxError(f"could not start the sandbox kernel: {exc}") from exc
        assert proc.stdout is not None and proc.stdin is not None
        self._proc = proc
        channel = KernelChannel(
            proc.stdout, proc.stdin, self.bridge, exit_status=lambda: _exit_status(proc)
        )
        self._channel = channel
        try:
            ready = await channel.receive(timeout=START_TIMEOUT_S)
        except SandboxError:
            await self._stop()
            raise
        if ready.get("op") != "ready":
            await self._stop()
            raise SandboxError(f"the kernel did not start properly: {ready!r:.200}")
        self.start_latency_s = time.perf_counter() - started
        self.kernel_host_pid = _find_kernel(proc.pid, int(ready.get("pid", 0)), self.isolated)
        if self._context is not None:
            name, path = self._context
            await self._request({"op": "load_context", "name": name, "path": path})

    async def _stop(self) -> None:
        channel, proc = self._channel, self._proc
        self._channel = self._proc = None
        self.kernel_host_pid = None
        if channel is not None:
            await channel.aclose()
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if self._cgroups is not None:
                self._cgroups.kill_all()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)

    # -- requests -------------------------------------------------------------------------

    async def _request(self, msg: dict[str, Any]) -> Any:
        channel = await self._ensure_started()
        reply = await channel.request(msg, timeout=START_TIMEOUT_S)
        if reply.get("op") == "error":
            raise UsageError(str(reply.get("error")))
        return reply.get("value")

    async def load_context(self, context: Any, *, name: str = "context") -> None:
        self._check_open()
        _check_name(name)
        if isinstance(context, str):
            data, suffix = context.encode("utf-8", "surrogateescape"), ".txt"
        elif isinstance(context, (bytes, bytearray)):
            data, suffix = bytes(context), ".bin"
        else:
            data, suffix = _to_json(context, "a context").encode("utf-8"), ".json"
        async with self._get_lock():
            folder = self._prepare()
            filename = f"{name}{suffix}"
            (folder / filename).write_bytes(data)
            os.chmod(folder / filename, 0o644)
            path = f"/rlmrt/{filename}" if self.isolated else str(folder / filename)
            self._context = (name, path)
            await self._request({"op": "load_context", "name": name, "path": path})

    async def set_variable(self, name: str, value: Any) -> None:
        self._check_open()
        _check_name(name)
        if isinstance(value, types.ModuleType):
            raise UsageError("modules cannot be put into the sandbox")
        json.loads(_to_json(value, "a variable"))
        async with self._get_lock():
            await self._request({"op": "set", "name": name, "value": value})

    async def get_variable(self, name: str) -> Any:
        self._check_open()
        async with self._get_lock():
            return await self._request({"op": "get", "name": name})

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
        channel = await self._ensure_started()
        started = time.perf_counter()
        timeout = self.limits.timeout_s
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
        error = reply.get("error")
        stderr = str(reply.get("stderr") or "") + (str(error) if error else "")
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
        """Kill the kernel when its process tree used `cpu_s` (+ grace) CPU seconds."""
        proc, cpu_s = self._proc, self.limits.cpu_s
        if proc is None or cpu_s is None:
            return
        base = _proc.cpu_seconds(_proc.descendants(proc.pid))
        while True:
            await asyncio.sleep(0.1)
            used = _proc.cpu_seconds(_proc.descendants(proc.pid)) - base
            if used > cpu_s + GRACE_S:
                self._killed_for = "cpu_s"
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                if self._cgroups is not None:
                    self._cgroups.kill_all()
                return

    async def _restart(
        self, reason: str | None, exc: SandboxError | None, started: float
    ) -> ExecResult:
        oom = self._cgroups is not None and self._cgroups.oom_killed()
        limits = self.limits
        if reason == "timeout_s":
            message = (
                f"TimeoutError: execution exceeded the {limits.timeout_s:g} s time limit"
                " (timeout_s) and did not stop"
            )
        elif reason == "cpu_s":
            message = (
                f"TimeoutError: execution used more than {limits.cpu_s:g} s of CPU (cpu_s limit)"
            )
        elif oom:
            message = (
                f"MemoryError: the sandbox ran out of memory (memory_mb={limits.memory_mb} limit)"
            )
        else:
            message = f"SandboxError: {exc}"
        await self._stop()
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None
        await self._spawn()
        message += "; the sandbox was restarted and its variables were lost"
        if self._context is not None:
            message += f" (`{self._context[0]}` was loaded again)"
        return ExecResult(stderr=message, error=message, duration_s=time.perf_counter() - started)


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"{name!r} is not a valid variable name")
    if name.startswith("_") or name in _RESERVED:
        raise UsageError(f"{name!r} is reserved in the sandbox; choose another name")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{what} put into the process sandbox must be JSON data"
            f" (str, number, bool, None, list, dict): {exc}"
        ) from exc


@functools.cache
def _kernel_pyc() -> bytes:
    """kernel.py compiled once per host process: the sandbox's interpreter is the base
    of this one (same version), and running bytecode saves ~8 ms of each start."""
    code = compile(Path(__file__).with_name("kernel.py").read_bytes(), "kernel.py", "exec")
    return importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code)


def _base_python() -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (f"python{version}", "python3"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    return str(getattr(sys, "_base_executable", sys.executable))


def _find_kernel(root: int, ns_pid: int, isolated: bool) -> int | None:
    """The host pid of the kernel (the process whose namespace pid is `ns_pid`)."""
    if not isolated:
        return root
    for pid in _proc.descendants(root):
        nspid = _proc.status_field(pid, "NSpid")
        if len(nspid) > 1 and nspid[-1] == str(ns_pid):
            return pid
    return None


async def _exit_status(proc: asyncio.subprocess.Process) -> str:
    try:
        code = await asyncio.wait_for(proc.wait(), 2)
    except asyncio.TimeoutError:
        return "the kernel process is still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        status = f"the kernel was killed by {name}"
    else:
        status = f"the kernel exited with code {code}"
    if proc.stderr is not None:
        with contextlib.suppress(Exception):
            tail = await asyncio.wait_for(proc.stderr.read(4000), 0.2)
            text = tail.decode("utf-8", "replace").strip()
            if text:
                status += f" ({text[-500:]})"
    return status
