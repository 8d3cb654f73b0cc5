"""What sandboxes of dead hosts left behind, removed when a sandbox first starts.

A host killed with SIGKILL runs no cleanup: its sandboxes' private folders (each with
a copy of the context) stay in the temp directory, and its child cgroups stay too. Their
names carry the host's pid (``rlmrt-<kind>-<pid>-...``, ``rlmrt-<pid>-<n>``); a host is
dead when no process has that pid, or when the process that has it started after the
folder was last changed (the pid was reused). The kernels themselves die with their
host (``--die-with-parent``, ``PR_SET_PDEATHSIG``); containers are swept by the docker
backend.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

from rlmrt.sandbox import _proc

__all__ = ["FOLDER_KINDS", "folder_prefix", "sweep_once"]

FOLDER_KINDS = ("process", "docker", "wasm")
_FOLDER = re.compile(rf"rlmrt-(?:{'|'.join(FOLDER_KINDS)})-(\d+)-")
_CGROUP = re.compile(r"rlmrt-(?:wasm-)?(\d+)-\d+$")


def folder_prefix(kind: str) -> str:
    """The `tempfile.mkdtemp` prefix of a private folder of this host process."""
    return f"rlmrt-{kind}-{os.getpid()}-"


@functools.cache
def sweep_once() -> None:
    """Sweep once per host process (a sandbox's first start)."""
    sweep(Path(tempfile.gettempdir()))


def sweep(temp_dir: Path) -> list[Path]:
    """Remove the private folders and child cgroups of dead hosts; return what went."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(temp_dir))
    except OSError:
        return removed
    for entry in entries:
        match = _FOLDER.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            changed = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if not _alive_since(int(match.group(1)), changed):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    for base in _proc.cgroup_bases():
        for folder in _children(base):
            match = _CGROUP.match(folder.name)
            if match is not None and not _alive_since(int(match.group(1)), None):
                _proc.kill_cgroup(folder)
                try:
                    folder.rmdir()
                except OSError:  # still dying; the next sweep takes it
                    continue
                removed.append(folder)
    return removed


def _children(base: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(base) if entry.is_dir()]
    except OSError:
        return []


def _alive_since(pid: int, changed: float | None) -> bool:
    """Whether process `pid` exists and (when `changed` is given) started before it."""
    if pid == os.getpid():
        return True
    started = _proc.started_at(pid)
    if started is None:
        return False
    return changed is None or started <= changed + 1.0
