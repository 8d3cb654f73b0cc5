"""`ContainerKernelBackend`: what the kinds whose kernel runs in a container image share
(docker, kubernetes): the user code runs as, the private folder given to that user, the
kernel's own rlimits, and the sizes of the memory ``/tmp`` and home."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlmrt.sandbox._kernel_backend import KernelBackend
from rlmrt.sandbox.base import Limits

__all__ = [
    "CGROUP_HEADROOM_MB",
    "SANDBOX_UID",
    "ContainerKernelBackend",
    "container_ids",
    "tmpfs_mb",
]

SANDBOX_UID = 65534  # the container's user when the host runs as root
_MB = 1 << 20
_AS_HEADROOM = 64 * _MB  # the interpreter's own mappings, on top of memory_mb
CGROUP_HEADROOM_MB = 96  # the container's memory cgroup sits above one RLIMIT_AS


def container_ids() -> tuple[int, int]:
    """The uid and gid code runs as in the container: nobody when the host is root (the
    private folder is given to it), else the host's own user, the one that can read the
    private folder (0700) without making it readable to every local user."""
    if os.getuid() == 0:
        return SANDBOX_UID, SANDBOX_UID
    return os.getuid(), os.getgid()


def tmpfs_mb(limits: Limits) -> int:
    """The size of the container's memory ``/tmp`` (and home), in MiB."""
    return max(16, min(256, (limits.file_bytes or 64 * _MB) // _MB * 2))


class ContainerKernelBackend(KernelBackend):
    """A kernel in a container: rlimits in the kernel under the container's own limits."""

    def _kernel_config(self) -> dict[str, Any]:
        limits = self.limits
        config = super()._kernel_config()
        if limits.memory_mb:
            config["rlimits"]["RLIMIT_AS"] = limits.memory_mb * _MB + _AS_HEADROOM
        if limits.file_bytes:
            config["rlimits"]["RLIMIT_FSIZE"] = limits.file_bytes
        if limits.cpu_s:
            config["rlimits"]["RLIMIT_CPU"] = int(limits.cpu_s * 20 + 300)
        return config

    def _new_folder(self) -> Path:
        folder = super()._new_folder()
        uid, gid = container_ids()
        if uid != os.getuid():
            os.chown(folder, uid, gid)  # 0700: only the container's user reads the contexts
        return folder
