"""`WasmSandbox`: the kernel inside Pyodide (CPython compiled to WebAssembly) under Deno.

How it runs (``kind = "wasm"``):

- Deno and Pyodide come from the npm registry, installed once by ``rlm setup wasm``
  into `runtime_dir()` (``$RLMRT_WASM_DIR``, default ``$RLMRT_HOME/wasm``); nothing is
  downloaded at run time. Node is not used: Python in Pyodide reaches JavaScript through
  the ``js`` module, and under Node that means ``child_process``.
- ``deno run`` gets no permission but reading the Pyodide folder, the runner, the
  memory snapshot and the sandbox's own folder (the kernel, the contexts; mounted
  read-only at /rlmrt in Pyodide), and every other one is denied
  explicitly (net, env, run, write, ffi, sys, remote imports); ``--no-prompt`` makes
  a refused call fail at once. Code that reaches Deno through ``js`` is refused by Deno.
- The runner (``_wasm_runner.mjs``) runs the same kernel as the process sandbox
  (`rlmrt.sandbox.kernel.serve_embedded`), so the protocol, the REPL and the channel on
  the host (`KernelChannel`) are shared. ``llm_query`` & co. are synchronous in Python:
  the runner writes the ``call`` frame and blocks on stdin for its ``result``.
- Quotas: wall time (a worker thread raises SIGALRM into Python through Pyodide's
  interrupt buffer, so variables survive; 1 s later the host kills Deno and a fresh
  one starts in the background); memory (WebAssembly memory, i.e. Python's whole heap,
  capped by V8's ``--wasm-max-mem-pages`` so Python gets a MemoryError, the JS heap by
  ``--max-old-space-size``, and the process by a cgroup v1 memory child when writable);
  CPU (the host sums Deno's CPU from /proc and kills at ``cpu_s`` + 1 s); processes
  (none can exist: WebAssembly has no fork and Deno refuses ``run``); output (cut in
  the kernel). ``file_bytes`` is not enforced: files live in Pyodide's in-memory file
  system, bounded by ``memory_mb`` only, and no host file can be written at all.
- Start: Deno restores a memory snapshot of a booted Python (`ensure_snapshot`, made
  once per Deno, Pyodide and runner under the runtime folder): about 0.5 s, against
  2-3 s and ten times the CPU for a full boot. `start()` does all of it, and the
  bridge may be set after it (a warm pool starts sandboxes before a run exists).
- The kernel is only as trusted as user code (it runs in the same interpreter); what
  code can do by forging frames on the channel is what it can do by calling the
  helpers. Deno's permissions are the boundary.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from rlmrt._home import default_home
from rlmrt.errors import MissingDependencyError, SandboxError
from rlmrt.sandbox import _proc
from rlmrt.sandbox._channel import KernelChannel
from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox.base import Diagnosis, ExecResult, HostBridge, Limits, QuotaStatus
from rlmrt.sandbox.kernel import exception_line
from rlmrt.sandbox.process import ProcessSandbox

__all__ = ["WasmSandbox", "find_runtime", "runtime_dir"]

DENO_VERSION = "2.9.6"
PYODIDE_VERSION = "0.29.5"
SETUP_HINT = (
    "run `rlm setup wasm`, or: npm install --prefix {dir}"
    f" deno@{DENO_VERSION} pyodide@{PYODIDE_VERSION}"
)
_MB = 1 << 20
_WASM_PAGE = 64 * 1024
_PYTHON_HEADROOM_MB = 32  # the interpreter's own heap (~20 MB after start) on top of memory_mb
# Deno, V8 and the compiled Pyodide (~150 MB), plus the JS and WebAssembly heaps
_CGROUP_HEADROOM = 256 * _MB
_HERE = Path(__file__).resolve().parent
RUNNER = _HERE / "_wasm_runner.mjs"
_ids = itertools.count(1)
SNAPSHOT_TIMEOUT_S = 120.0
log = logging.getLogger("rlmrt")


def runtime_dir() -> Path:
    """Where Deno and Pyodide are installed: ``$RLMRT_WASM_DIR`` when set, else
    ``$RLMRT_HOME/wasm``, else ``~/.rlmrt/wasm`` (an installation outlives a changed
    RLMRT_HOME, as in the test suite)."""
    configured = os.environ.get("RLMRT_WASM_DIR")
    if configured:
        return Path(configured).expanduser()
    candidates = [default_home() / "wasm", Path.home() / ".rlmrt" / "wasm"]
    for folder in candidates:
        if (folder / "node_modules").is_dir():
            return folder
    return candidates[0]


def find_runtime(folder: Path | None = None) -> tuple[Path, Path]:
    """(the deno binary, the Pyodide folder), or `MissingDependencyError` naming what is not
    there."""
    folder = folder or runtime_dir()
    modules = folder / "node_modules"
    deno = modules / "deno" / "deno"
    pyodide = modules / "pyodide"
    if not (deno.is_file() and os.access(deno, os.X_OK)):
        raise _runtime_missing(f"Deno ({deno})", folder)
    if not (pyodide / "pyodide.mjs").is_file() or not (pyodide / "pyodide.asm.wasm").is_file():
        raise _runtime_missing(f"Pyodide ({pyodide})", folder)
    return deno, pyodide.resolve()


def _runtime_missing(missing: str, folder: Path) -> MissingDependencyError:
    """Deno or Pyodide is not installed where the wasm sandbox looks for them."""
    return MissingDependencyError(
        missing,
        "wasm",
        message=f"the wasm sandbox needs {missing}, not found in {folder};"
        f" {SETUP_HINT.format(dir=folder)}",
    )


class WasmSandbox(ProcessSandbox):
    """Runs code in Pyodide under Deno (see the module docstring). A process sandbox in
    how its one process is killed, watched and cgrouped; not in how it starts."""

    kind = "wasm"
    restart_in_background = True  # a Pyodide start takes seconds
    slow_start = True

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        memory = "WebAssembly memory cap (--wasm-max-mem-pages), V8 --max-old-space-size"
        if _proc.cgroup_writable("memory"):
            memory += ", cgroup v1 memory.limit_in_bytes"
        return [
            QuotaStatus(
                "exec_timeout_s", True, "interrupt from a timer thread; kill and restart 1 s later"
            ),
            QuotaStatus("cpu_s", True, "host /proc CPU of the Deno process; kill and restart"),
            QuotaStatus("memory_mb", True, memory),
            QuotaStatus(
                "processes", True, "WebAssembly has no processes and Deno refuses to run any"
            ),
            QuotaStatus("output_bytes", True, "cut in the kernel"),
            QuotaStatus("file_bytes", False, "files live in Pyodide's in-memory file system"),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        try:
            _deno, pyodide = find_runtime()
        except MissingDependencyError as exc:
            return Diagnosis(status="warn", detail=f"not ready: {exception_line(exc)}")
        return Diagnosis(
            status="ok",
            detail=f"Deno {DENO_VERSION} and Pyodide {PYODIDE_VERSION} in {pyodide.parent.parent}",
            quotas=(*cls.quota_report(),),
        )

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        bridge: HostBridge | None = None,
        runtime: Path | None = None,
    ) -> None:
        self.deno, self.pyodide = find_runtime(runtime)
        super().__init__(limits=limits, bridge=bridge)
        self.isolated = True
        self.inside_root = "/rlmrt"  # the runner mounts the private folder there, read-only
        self._death = ""

    def _new_folder(self) -> Path:
        return KernelBackend._new_folder(self)  # kernel.py itself: Pyodide compiles it

    def _kernel_config(self) -> dict[str, Any]:
        return KernelBackend._kernel_config(self)  # no rlimits or uid: one process, no OS

    def _argv(self, folder: Path, snapshot: Path | None = None) -> list[str]:
        readable = [self.pyodide, RUNNER, folder, *([snapshot] if snapshot else [])]
        # V8's default stack is too small for CPython's C recursion (a deep repr ends
        # Pyodide); 4 MB, half of the main thread's, gives a RecursionError instead
        v8 = ["--stack-size=4096"]
        memory = self.limits.memory_mb
        if memory:
            pages = (memory + _PYTHON_HEADROOM_MB) * _MB // _WASM_PAGE
            v8 += [f"--wasm-max-mem-pages={pages}", f"--max-old-space-size={max(memory, 128)}"]
        return [
            str(self.deno),
            *_deno_flags(readable),
            "--deny-write",
            f"--v8-flags={','.join(v8)}",
            str(RUNNER),
            str(self.pyodide),
            str(snapshot or ""),
            "serve",
            str(folder / "kernel.py"),
            str(folder),
            json.dumps(self._kernel_config()),
        ]

    def _cgroup_set(self) -> _proc.CgroupSet:
        if self._cgroups is None:
            memory = self.limits.memory_mb
            self._cgroups = _proc.CgroupSet(
                f"rlmrt-wasm-{os.getpid()}-{next(_ids)}",
                memory_bytes=2 * memory * _MB + _CGROUP_HEADROOM if memory else None,
                pids_max=None,
            )
        return self._cgroups

    async def _launch(self, folder: Path) -> KernelChannel:
        argv = self._argv(folder, await ensure_snapshot(self.deno, self.pyodide))
        return await self._start_process(
            argv, _deno_env(folder), folder, "Deno for the wasm sandbox"
        )

    async def _on_ready(self, ready: dict[str, Any]) -> None:
        assert self._proc is not None
        self.kernel_host_pid = self._proc.pid

    def _end_strays(self) -> bool:
        return False  # Pyodide starts no process and no thread; Deno's own threads are not strays

    def _oom_killed(self) -> bool:
        if super()._oom_killed():
            return True
        # V8 ends the process when its JS heap is full; its last words are in the error
        death = self._death.lower()
        return "out of memory" in death or "heap limit" in death

    async def _restart(
        self, reason: str | None, exc: SandboxError | None, started: float
    ) -> ExecResult:
        self._death = str(exc or "")  # V8's last words say whether memory ended it
        return await super()._restart(reason, exc, started)


def _cache_dir(name: str) -> Path:
    """A folder of the host user's own under the runtime folder (a temp one if that is
    read-only); the sandbox cannot write anywhere, so none of it is user-writable."""
    folder = runtime_dir() / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        folder = Path(tempfile.gettempdir()) / f"rlmrt-wasm-{name}-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _deno_dir() -> Path:
    """Deno's own cache (compiled code)."""
    return _cache_dir("deno-cache")


def _deno_flags(readable: list[Path]) -> list[str]:
    """`deno run` with reading `readable` as its one permission."""
    return [
        "run",
        "--quiet",
        "--no-prompt",
        "--no-config",
        "--no-lock",
        "--no-npm",
        "--no-remote",
        f"--allow-read={','.join(str(p) for p in readable)}",
        "--deny-net",
        "--deny-env",
        "--deny-run",
        "--deny-ffi",
        "--deny-sys",
        "--deny-import",
    ]


def _deno_env(home: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "DENO_DIR": str(_deno_dir()),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }


def snapshot_path(deno: Path, pyodide: Path) -> Path:
    """Where the memory snapshot for this Deno, Pyodide and runner is kept."""
    key = hashlib.sha256(RUNNER.read_bytes())
    for part in (deno, pyodide / "pyodide.asm.wasm", pyodide / "python_stdlib.zip"):
        stat = part.stat()
        key.update(f"{part}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return _cache_dir("snapshots") / f"pyodide-{PYODIDE_VERSION}-{key.hexdigest()[:16]}.bin"


async def ensure_snapshot(deno: Path, pyodide: Path) -> Path | None:
    """The snapshot of a booted Python (made once by the runner's `make` mode, with no
    user code and write permission for that one file), or None when it cannot be made:
    the sandbox then boots Python in full, ten times the CPU."""
    try:
        path = snapshot_path(deno, pyodide)
    except OSError as exc:
        log.warning("wasm sandbox: no memory snapshot (%s); Python boots in full", exc)
        return None
    if path.is_file():
        return path
    partial = path.with_name(f".{path.name}.{os.getpid()}-{next(_ids)}")
    argv = [str(deno), *_deno_flags([pyodide, RUNNER, partial.parent])]
    argv += [f"--allow-write={partial}", str(RUNNER), str(pyodide), str(partial), "make"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=_deno_env(partial.parent),
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), SNAPSHOT_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        err = b"timed out"
    if proc.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        log.warning(
            "wasm sandbox: could not make the memory snapshot (%s); Python boots in full",
            err.decode("utf-8", "replace").strip()[-300:],
        )
        return None
    os.replace(partial, path)  # atomic: concurrent makers each write their own file
    return path
