"""Host-side process accounting for the process sandbox: cgroup v1 and /proc reads."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from pathlib import Path

from rlmrt.sandbox.kernel import THREADS_AT_REST

CGROUP_ROOT = Path("/sys/fs/cgroup")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _own_path(controller: str) -> str | None:
    """Our cgroup path in the v1 hierarchy holding `controller` (from /proc/self/cgroup)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return parts[2]
    return None


def _base(controller: str) -> Path | None:
    own = _own_path(controller)
    folder = CGROUP_ROOT / controller
    if own is None or not (folder / "cgroup.procs").exists():
        return None
    return folder / own.lstrip("/")


@functools.cache
def cgroup_writable(controller: str) -> bool:
    """Whether we can make a child cgroup under our own in the v1 `controller` hierarchy."""
    base = _base(controller)
    if base is None:
        return False
    probe = base / f"rlmrt-probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True


class CgroupSet:
    """Child cgroups (memory, pids) for one sandbox; processes join them before exec."""

    def __init__(self, name: str, *, memory_bytes: int | None, pids_max: int | None) -> None:
        self.dirs: list[Path] = []
        self.memory: Path | None = None
        self.pids: Path | None = None
        wanted = (("memory", memory_bytes, "memory.limit_in_bytes"), ("pids", pids_max, "pids.max"))
        for controller, value, knob in wanted:
            if value is None or not cgroup_writable(controller):
                continue
            base = _base(controller)
            assert base is not None
            folder = base / name
            try:
                folder.mkdir()
                self.dirs.append(folder)
                (folder / knob).write_text(str(value))
            except OSError:
                continue
            if controller == "memory":
                self.memory = folder
            else:
                self.pids = folder

    def procs_files(self) -> list[str]:
        """The `cgroup.procs` files a new process writes its pid into to join."""
        return [
            str(folder / "cgroup.procs")
            for folder in (self.memory, self.pids)
            if folder is not None
        ]

    def oom_killed(self) -> bool:
        if self.memory is None:
            return False
        try:
            control = (self.memory / "memory.oom_control").read_text()
            failcnt = int((self.memory / "memory.failcnt").read_text() or 0)
        except (OSError, ValueError):
            return False
        for line in control.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return failcnt > 0

    def processes(self) -> list[int] | None:
        """The processes in our pids cgroup (None: no pids cgroup)."""
        if self.pids is None:
            return None
        try:
            return [int(pid) for pid in (self.pids / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return None

    def kill_all(self) -> None:
        """SIGKILL every process left in our cgroups (all started by this sandbox)."""
        for folder in self.dirs:
            kill_cgroup(folder)

    def remove(self, wait_s: float = 2.0) -> None:
        deadline = time.monotonic() + wait_s
        for folder in self.dirs:
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    self.kill_all()
                    time.sleep(0.01)
        self.dirs = []


def kill_cgroup(folder: Path) -> None:
    """SIGKILL every process in the cgroup `folder`."""
    with contextlib.suppress(OSError, ValueError):
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)


def kill_strays(tree: list[int], keep: set[int]) -> bool:
    """SIGKILL the processes of `tree` not in `keep` (what code left running after its
    execute); return whether a process of `keep` runs more threads than the kernel's own
    (`kernel.THREADS_AT_REST`: code left a thread running)."""
    for pid in tree:
        if pid not in keep:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return any(int((status_field(pid, "Threads") or ["1"])[0]) > THREADS_AT_REST for pid in keep)


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of `pids` and of their reaped children."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


def cgroup_bases() -> list[Path]:
    """Our own cgroup folders in the v1 hierarchies we make children in."""
    bases = (_base(controller) for controller in ("memory", "pids"))
    return [base for base in bases if base is not None]


@functools.cache
def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def started_at(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        ticks = int(stat[stat.rfind(b")") + 2 :].split()[19])  # field 22: starttime
        return _boot_time() + ticks / _TICK
    except (OSError, ValueError, IndexError):
        return None


def status_field(pid: int, name: str) -> list[str]:
    """A field of /proc/<pid>/status split into words ([] if unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == name:
                return value.split()
    except OSError:
        pass
    return []
