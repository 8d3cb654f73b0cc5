"""`DockerSandbox`: the kernel in a container that lives as long as the sandbox.

How the container is made (``kind = "docker"``), through the Docker SDK for Python:

- Hardened by default: no network (``network_mode="none"``), a read-only root
  filesystem with small tmpfs ``/tmp`` and ``/home/sandbox`` (noexec, nosuid), uid
  65534 (the host's own uid when it is not root: the private folder is 0700), every
  capability dropped, ``no-new-privileges``, a memory cgroup limit
  (no swap), a pids limit, no host environment variables.
- The image holds only Debian and Python (see `rlmrt.sandbox.docker_image`, built
  offline from Debian packages); the kernel and the contexts come from the sandbox's
  private folder on the host, bind-mounted read-only at ``/rlmrt``. So an image never
  goes stale when rlmrt is upgraded.
- The protocol travels over the container's attached stdin/stdout (attached before
  the container starts, so nothing is lost); the container needs no network and no
  port on the host. Docker multiplexes stdout and stderr on that stream: `_demux`
  takes the kernel's stdout out of it. ``stdin_once`` closes the kernel's stdin when
  this process goes away, so an orphaned kernel exits; leftover containers of dead
  hosts are removed at the next start (`_sweep_orphans`).
- Quotas: wall time and CPU as in the process sandbox (the kernel's timers; the host
  reads the container's processes in /proc and kills past the grace), memory
  (RLIMIT_AS in the kernel so that Python gets a MemoryError first, the container's
  memory cgroup as the backstop for the whole tree), processes (the pids cgroup),
  file size (RLIMIT_FSIZE, and the tmpfs sizes), output (cut in the kernel).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlmrt.errors import ConfigError, SandboxError
from rlmrt.sandbox import _proc
from rlmrt.sandbox._channel import KernelChannel
from rlmrt.sandbox._container import (
    CGROUP_HEADROOM_MB,
    ContainerKernelBackend,
    container_ids,
    tmpfs_mb,
)
from rlmrt.sandbox.base import Diagnosis, HostBridge, Limits, QuotaStatus
from rlmrt.sandbox.kernel import exception_line

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

__all__ = ["DEFAULT_IMAGE", "DockerSandbox", "docker_client"]

DEFAULT_IMAGE = "rlmrt-sandbox:bookworm"
LABEL = "io.rlmrt.sandbox"
HOST_PID_LABEL = "io.rlmrt.host-pid"
_MB = 1 << 20
_DEFAULT_PIDS = 256  # a pids cgroup even when `processes` is not set: no fork bombs
_TMPFS = "rw,nosuid,nodev,noexec,size={mb}m,mode={mode},uid={uid},gid={gid}"
_DEMUX_HEADER = struct.Struct(">BxxxI")
_API_VERSION = "1.41"  # fixed: "auto" asks the engine in the constructor (Docker 20.10+)
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_client: DockerClient | None = None
_swept = False


def image_present(tag: str = DEFAULT_IMAGE) -> bool:
    """Whether the engine has the image `tag`."""
    import docker.errors

    try:
        docker_client().images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def docker_client() -> DockerClient:
    """One Docker client per process, checked to reach the engine."""
    global _client
    if _client is None:
        try:
            import docker
        except ImportError as exc:
            raise ConfigError(
                "the docker sandbox needs the Docker SDK: pip install 'rlmrt[docker]'"
            ) from exc
        host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        hint = "is dockerd running? `rlm setup docker` starts it"
        if host.startswith("unix://") and not _unix_socket_answers(host[len("unix://") :]):
            # checked here: the SDK leaks its socket when the engine is not there
            raise SandboxError(f"cannot reach the Docker engine at {host} ({hint})")
        client = docker.from_env(version=_API_VERSION, timeout=30)
        try:
            client.ping()
        except Exception as exc:
            client.close()
            raise SandboxError(f"cannot reach the Docker engine at {host} ({hint}): {exc}") from exc
        _client = client
    return _client


def _unix_socket_answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class DockerSandbox(ContainerKernelBackend):
    """Runs code in a kernel inside a hardened container (see the module docstring)."""

    kind = "docker"
    slow_start = True

    @classmethod
    def quota_report(cls) -> list[QuotaStatus]:
        return [
            QuotaStatus(
                "exec_timeout_s", True, "SIGALRM in the kernel; kill and restart 1 s later"
            ),
            QuotaStatus(
                "cpu_s",
                True,
                "ITIMER_PROF in the kernel, host /proc CPU, RLIMIT_CPU; processes left running"
                " are killed after each execute, threads get cpu_s more",
            ),
            QuotaStatus("memory_mb", True, "RLIMIT_AS + the container's memory cgroup"),
            QuotaStatus("processes", True, "the container's pids cgroup"),
            QuotaStatus("file_bytes", True, "RLIMIT_FSIZE, tmpfs sizes"),
            QuotaStatus("output_bytes", True, "cut in the kernel; frames capped on the host"),
        ]

    @classmethod
    def diagnose(cls) -> Diagnosis:
        """Whether the Docker SDK, a reachable engine and the sandbox image are there."""
        fix = "run `rlm setup docker` (as root)"
        try:
            version = docker_client().version().get("Version", "?")
            image = os.environ.get("RLMRT_DOCKER_IMAGE") or DEFAULT_IMAGE
            present = image_present(image)
        except Exception as exc:  # noqa: BLE001 - what is missing is the diagnosis
            return Diagnosis(status="warn", detail=f"not available: {exception_line(exc)}; {fix}")
        if not present:
            detail = f"engine {version} reachable, image {image} missing; {fix}"
            return Diagnosis(status="warn", detail=detail)
        detail = (
            f"engine {version}, image {image}; no network, read-only root, uid 65534,"
            " no capabilities"
        )
        return Diagnosis(status="ok", detail=detail, quotas=(*cls.quota_report(),))

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        bridge: HostBridge | None = None,
        image: str | None = None,
    ) -> None:
        super().__init__(limits=limits, bridge=bridge)
        self.image = image or os.environ.get("RLMRT_DOCKER_IMAGE") or DEFAULT_IMAGE
        self.container_id: str | None = None
        self.kernel_host_pid: int | None = None
        self._container: Container | None = None
        self._demux_task: asyncio.Task[None] | None = None
        self._attach: Any = None  # the SDK's socket file object; it holds the fd open
        self._stderr = bytearray()
        self._oom = False

    # -- the container ------------------------------------------------------------------

    def _create_args(self, folder: Path) -> dict[str, Any]:
        limits = self.limits
        tmp_mb = tmpfs_mb(limits)
        uid, gid = container_ids()
        args: dict[str, Any] = {
            "command": [
                "python3",
                "-I",
                "-S",
                "/rlmrt/kernel.py",
                json.dumps(self._kernel_config()),
            ],
            "user": f"{uid}:{gid}",
            "working_dir": "/home/sandbox",
            "environment": {"HOME": "/home/sandbox", "LANG": "C.UTF-8"},
            "hostname": "sandbox",
            "stdin_open": True,  # not detached: StdinOnce, the kernel sees EOF when we go
            "tty": False,
            "network_mode": "none",
            "read_only": True,
            "tmpfs": {
                "/tmp": _TMPFS.format(mb=tmp_mb, mode="1777", uid=uid, gid=gid),
                "/home/sandbox": _TMPFS.format(mb=tmp_mb, mode="0700", uid=uid, gid=gid),
            },
            "volumes": {str(folder): {"bind": "/rlmrt", "mode": "ro"}},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": (limits.processes + 1) if limits.processes else _DEFAULT_PIDS,
            "labels": {LABEL: "1", HOST_PID_LABEL: str(os.getpid())},
        }
        if limits.memory_mb:
            memory = (limits.memory_mb + CGROUP_HEADROOM_MB) * _MB
            args["mem_limit"] = memory
            args["memswap_limit"] = memory  # no swap on top
        return args

    def _create(self, folder: Path) -> tuple[Container, Any]:
        """Create the container and attach to it (blocking: run in a thread)."""
        client = docker_client()
        _sweep_orphans(client)
        import docker.errors

        try:
            container = client.containers.create(self.image, **self._create_args(folder))
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"the docker sandbox image {self.image!r} is missing; build it with"
                " `python -m rlmrt.sandbox.docker_image` (needs root and debootstrap)"
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not create the sandbox container: {exc}") from exc
        if container.id is None:  # pragma: no cover - the engine always gives one
            raise SandboxError("the Docker engine made a container without an id")
        raw = None
        try:
            raw = client.api.attach_socket(
                container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            container.start()
            container.reload()
        except Exception:
            if raw is not None:
                _close_attach(raw)
            _remove(container)
            raise
        return container, raw

    async def _launch(self, folder: Path) -> KernelChannel:
        self._stderr.clear()
        self._oom = False
        creating = asyncio.ensure_future(asyncio.to_thread(self._create, folder))
        try:
            container, raw = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # the thread goes on: what it makes must not be left running
            with contextlib.suppress(Exception):
                container, raw = await creating
                _close_attach(raw)
                await asyncio.to_thread(_remove, container)
            raise
        self._container, self.container_id = container, container.id
        self.kernel_host_pid = int(container.attrs.get("State", {}).get("Pid") or 0) or None
        self._attach = raw
        sock = getattr(raw, "_sock", raw)
        sock.setblocking(False)
        mux_reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        stdout = asyncio.StreamReader(limit=1 << 20)
        self._demux_task = asyncio.create_task(_demux(mux_reader, stdout, self._stderr.extend))
        return KernelChannel(stdout, writer, self.bridge, exit_status=self._exit_status)

    async def _exit_status(self) -> str:
        container = self._container
        if container is None:
            return "the container is gone"
        try:
            state = await asyncio.wait_for(asyncio.to_thread(_state, container), 5)
        except Exception as exc:  # noqa: BLE001 - the status only words an error
            return f"the container's state is unknown ({exc})"
        self._oom = bool(state.get("OOMKilled"))
        if state.get("Running"):
            status = "the kernel's container is still running"
        else:
            status = f"the kernel's container exited with code {state.get('ExitCode')}"
            if self._oom:
                status += " (killed for memory)"
        tail = bytes(self._stderr[-500:]).decode("utf-8", "replace").strip()
        return f"{status} ({tail})" if tail else status

    async def _terminate(self) -> None:
        container, self._container = self._container, None
        task, self._demux_task = self._demux_task, None
        attach, self._attach = self._attach, None
        self.kernel_host_pid = None
        if task is not None:
            task.cancel()
        if attach is not None:
            _close_attach(attach)
        if container is not None:
            self._oom = self._oom or bool(await asyncio.to_thread(_remove, container))

    def _cpu_seconds(self) -> float | None:
        if self.kernel_host_pid is None:
            return None
        return _proc.cpu_seconds(_proc.descendants(self.kernel_host_pid))

    def _end_strays(self) -> bool:
        # the kernel is the container's pid 1: whatever the code started is below it
        if self.kernel_host_pid is None:
            return False
        pid = self.kernel_host_pid
        return _proc.kill_strays(_proc.descendants(pid), {pid})

    def _oom_killed(self) -> bool:
        return self._oom


async def _demux(
    mux: asyncio.StreamReader, stdout: asyncio.StreamReader, stderr: Callable[[bytes], Any]
) -> None:
    """Split Docker's multiplexed attach stream: stdout frames feed `stdout`."""
    try:
        while True:
            header = await mux.readexactly(_DEMUX_HEADER.size)
            stream, size = _DEMUX_HEADER.unpack(header)
            payload = await mux.readexactly(size)
            if stream == 1:
                stdout.feed_data(payload)
            elif stream == 2:
                stderr(payload[-4000:])
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    finally:
        stdout.feed_eof()


def _close_attach(raw: Any) -> None:
    """Close the SDK's attach socket file and the socket under it (each holds the fd)."""
    for closable in (raw, getattr(raw, "_sock", None)):
        if closable is not None:
            with contextlib.suppress(OSError):
                closable.close()


def _state(container: Container) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs.get("State") or {})


def _remove(container: Container) -> bool:
    """Kill and remove `container`; whether it had been killed for memory."""
    oom = False
    with contextlib.suppress(Exception):
        oom = bool(_state(container).get("OOMKilled"))
    with contextlib.suppress(Exception):
        container.remove(force=True)
    return oom


def _sweep_orphans(client: DockerClient) -> None:
    """Remove sandbox containers whose host process is gone (once per process)."""
    global _swept
    if _swept:
        return
    _swept = True
    with contextlib.suppress(Exception):
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            pid = int(container.labels.get(HOST_PID_LABEL, "0") or 0)
            if pid and not _alive(pid):
                container.remove(force=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
