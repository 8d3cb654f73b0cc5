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
- The whole tree, not only the block: when an execute ends, every process the code
  left running (found in the pids cgroup, which a double fork cannot leave, else below
  the launcher in /proc) is killed; threads it left running in the kernel may use
  ``cpu_s`` more CPU seconds before the next execute, then the kernel is killed (the
  host watches its CPU) and the next execute says so.
- Nothing outlives the host: ``--die-with-parent`` (``setpriv --pdeathsig KILL``
  without bubblewrap), and a host's first sandbox sweeps the folders and cgroups of
  dead hosts (`rlmrt.sandbox._sweep`).
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
import logging
import marshal
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from rlmrt.errors import SandboxError
from rlmrt.sandbox import _proc
from rlmrt.sandbox._channel import KernelChannel
from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox._sweep import folder_prefix
from rlmrt.sandbox.base import Diagnosis, HostBridge, Limits, QuotaStatus

__all__ = ["ProcessSandbox", "bubblewrap_available"]

log = logging.getLogger("rlmrt")

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"  # util-linux
SANDBOX_UID = 65534
_MB = 1 << 20
_AS_HEADROOM = 64 * _MB  # the interpreter's own mappings, on top of memory_mb
# above the RLIMIT_AS of one process, so one process hits RLIMIT_AS (a MemoryError the
# kernel survives) first; the cgroup bounds the whole tree
_CGROUP_HEADROOM = _AS_HEADROOM + 32 * _MB
_KERNEL_PROCESSES = 3  # bwrap, bwrap's pid 1 in the namespace, the kernel
_ids = itertools.count(1)
_JOIN_AND_EXEC = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done;'
    ' exec "$@"'
)
_warned = False


def bubblewrap_available() -> bool:
    return os.path.isfile(BWRAP) and os.access(BWRAP, os.X_OK)


class ProcessSandbox(KernelBackend):
    """Runs code in a kernel process under bubblewrap (see the module docstring)."""

    kind = "process"
    slow_start = True

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
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
            uid = (
                "runs as root: no uid drop without bubblewrap" if root else "runs as the host user"
            )
        return [
            QuotaStatus("isolation", bwrap, isolation),
            QuotaStatus("network", bwrap, "no network namespace" if bwrap else "host network"),
            QuotaStatus("uid", bwrap or not root, uid),
            QuotaStatus(
                "exec_timeout_s", True, "SIGALRM in the kernel; kill and restart 1 s later"
            ),
            QuotaStatus(
                "cpu_s",
                True,
                "ITIMER_PROF in the kernel, host /proc tree CPU, RLIMIT_CPU; processes left"
                " running are killed after each execute, threads get cpu_s more",
            ),
            QuotaStatus(
                "memory_mb",
                True,
                "RLIMIT_AS" + (" + cgroup v1 memory.limit_in_bytes" if memory_cg else ""),
            ),
            QuotaStatus(
                "processes",
                pids_cg,
                "cgroup v1 pids.max"
                if pids_cg
                else "no writable pids cgroup (RLIMIT_NPROC is moot)",
            ),
            QuotaStatus("file_bytes", True, "RLIMIT_FSIZE"),
            QuotaStatus("output_bytes", True, "cut in the kernel; frames capped on the host"),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        quotas = (*cls.quota_report(),)
        if not bubblewrap_available():
            fix = "`rlm setup process` installs it (as root: Debian's bubblewrap)"
            return Diagnosis(status="warn", detail=f"bubblewrap not found: {fix}", quotas=quotas)
        return Diagnosis(status="ok", detail="bubblewrap available", quotas=quotas)

    def __init__(self, *, limits: Limits | None = None, bridge: HostBridge | None = None) -> None:
        super().__init__(limits=limits, bridge=bridge)
        self.isolated = bubblewrap_available()
        self.inside_root = "/rlmrt" if self.isolated else None
        self._kernel_host_pid: int | None = None
        self._kernel_ns_pid = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._cgroups: _proc.CgroupSet | None = None
        self._kernel_tree: set[int] = set()  # bwrap, its pid 1 and the kernel

    def _new_folder(self) -> Path:
        global _warned
        folder = Path(tempfile.mkdtemp(prefix=folder_prefix(self.kind)))
        (folder / "kernel.pyc").write_bytes(_kernel_pyc())
        if os.getuid() == 0 and self.isolated:
            os.chown(folder, SANDBOX_UID, SANDBOX_UID)  # readable after the uid drop
        if not self.isolated and not _warned:
            _warned = True
            log.warning(
                "bubblewrap not found at %s: the process sandbox runs code in a plain "
                "subprocess with resource limits only (no filesystem, network or uid "
                "isolation)",
                BWRAP,
            )
        return folder

    def _cgroup_set(self) -> _proc.CgroupSet:
        if self._cgroups is None:
            limits = self.limits
            memory = limits.memory_mb * _MB + _CGROUP_HEADROOM if limits.memory_mb else None
            pids = limits.processes + _KERNEL_PROCESSES if limits.processes else None
            name = f"rlmrt-{os.getpid()}-{next(_ids)}"
            self._cgroups = _proc.CgroupSet(name, memory_bytes=memory, pids_max=pids)
        return self._cgroups

    def _kernel_config(self) -> dict[str, Any]:
        limits = self.limits
        config = super()._kernel_config()
        rlimits = config["rlimits"]
        if limits.memory_mb:
            rlimits["RLIMIT_AS"] = limits.memory_mb * _MB + _AS_HEADROOM
        if limits.file_bytes:
            rlimits["RLIMIT_FSIZE"] = limits.file_bytes
        if limits.cpu_s:
            rlimits["RLIMIT_CPU"] = int(limits.cpu_s * 20 + 300)
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

    async def _launch(self, folder: Path) -> KernelChannel:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder), "LANG": "C.UTF-8"}
        return await self._start_process(self._argv(folder), env, folder, "the sandbox kernel")

    async def _start_process(
        self, argv: list[str], env: dict[str, str], folder: Path, what: str
    ) -> KernelChannel:
        """Start `argv` in the sandbox's cgroups, its own session, pipes for the channel."""
        procs_files = self._cgroup_set().procs_files()
        if argv[0] != BWRAP and os.access(SETPRIV, os.X_OK):
            # bubblewrap has --die-with-parent; anything else gets the same from setpriv
            # (PR_SET_PDEATHSIG survives exec): nothing runs on after the host is killed
            argv = [SETPRIV, "--pdeathsig", "KILL", "--", *argv]
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
            raise SandboxError(f"could not start {what}: {exc}") from exc
        assert proc.stdout is not None and proc.stdin is not None
        self._proc = proc
        return KernelChannel(
            proc.stdout, proc.stdin, self.bridge, exit_status=lambda: _exit_status(proc)
        )

    async def _on_ready(self, ready: dict[str, Any]) -> None:
        self._kernel_ns_pid = int(ready.get("pid", 0))
        self._kernel_tree = set(self._tree())

    def _tree(self) -> list[int]:
        """Every process of this sandbox: its pids cgroup (which a double fork cannot
        leave), else the process tree below the kernel's launcher."""
        if self._proc is None:
            return []
        in_cgroup = self._cgroups.processes() if self._cgroups is not None else None
        return in_cgroup if in_cgroup is not None else _proc.descendants(self._proc.pid)

    def _end_strays(self) -> bool:
        if not self._kernel_tree:  # not known: nothing can be told apart from the kernel
            return False
        return _proc.kill_strays(self._tree(), self._kernel_tree)

    @property
    def kernel_host_pid(self) -> int | None:
        """The kernel's pid on the host, found when first asked (a scan of /proc would
        add ~2 ms to every start)."""
        if self._kernel_host_pid is None and self._proc is not None:
            self._kernel_host_pid = _find_kernel(self._proc.pid, self._kernel_ns_pid, self.isolated)
        return self._kernel_host_pid

    @kernel_host_pid.setter
    def kernel_host_pid(self, pid: int | None) -> None:
        self._kernel_host_pid = pid

    async def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        self.kernel_host_pid = None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._cgroups is not None:
            self._cgroups.kill_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        # asyncio.subprocess.Process has no close(): without this, Python 3.10 reports
        # "unclosed transport" for a killed kernel when the transport is collected
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()

    def _cpu_seconds(self) -> float | None:
        if self._proc is None:
            return None
        return _proc.cpu_seconds(_proc.descendants(self._proc.pid))

    def _oom_killed(self) -> bool:
        return self._cgroups is not None and self._cgroups.oom_killed()

    def _after_kill(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None


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
