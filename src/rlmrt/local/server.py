"""The local model server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

One server per rlmrt home, shared by every run: `ensure_server` reuses a healthy one
(recorded in ``server.json`` in the models folder, checked by pid, command line and
an HTTP probe) or starts one in its own session, so it outlives the command that
started it; `stop_server` ends it by its recorded pid. A file lock keeps two rlmrt
processes from starting two servers at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rlmrt.errors import ConfigError, ServerError
from rlmrt.local import store
from rlmrt.local.catalog import LocalModel

__all__ = [
    "ServerInfo",
    "check_servable",
    "ensure_server",
    "llama_server_installed",
    "running_server",
    "server_command",
    "stop_server",
]

START_TIMEOUT_S = 300.0
_MARKER = "llama_cpp.server"
# servers this process started: kept so they are not reported as leaked while they
# run on purpose after a command ends, and reaped when stopped from here
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class ServerInfo:
    pid: int
    port: int
    model: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def llama_server_installed() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("llama_cpp") is not None
        and importlib.util.find_spec("uvicorn") is not None
    )


def _state_file() -> Path:
    return store.models_dir() / "server.json"


def _log_file() -> Path:
    return store.models_dir() / "server.log"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    store.models_dir().mkdir(parents=True, exist_ok=True)
    with (store.models_dir() / "server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def server_command(model: LocalModel, port: int) -> list[str]:
    threads = max(1, len(os.sched_getaffinity(0)))
    return [
        sys.executable,
        "-m",
        _MARKER,
        "--model",
        str(store.model_path(model)),
        "--model_alias",
        model.name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(model.context_tokens),
        "--n_threads",
        str(threads),
    ]


def _ours(pid: int) -> bool:
    """Whether `pid` is alive and a llama-cpp server (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _MARKER.encode() in cmdline


def _answers(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=timeout) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def running_server() -> ServerInfo | None:
    """The recorded server, if it is alive (and was answering when it was recorded).

    A busy server may not answer a probe at once (it serves one request at a time):
    alive is enough, or a second server would start beside it.
    """
    _reap_exited()
    try:
        data = json.loads(_state_file().read_text())
        info = ServerInfo(pid=int(data["pid"]), port=int(data["port"]), model=str(data["model"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _ours(info.pid) else None


def check_servable(model: LocalModel) -> None:
    """A ConfigError saying what to install or pull when `model` cannot be served
    (quick: it starts nothing)."""
    if not llama_server_installed():
        raise ConfigError(
            "the local model needs llama-cpp-python's server: pip install 'rlmrt[local]'"
            " (it compiles llama.cpp, a few minutes)"
        )
    if not store.verified(model):
        raise ConfigError(
            f"the local model {model.name} is not downloaded: run `rlm model pull {model.name}`"
        )


def ensure_server(model: LocalModel) -> ServerInfo:
    """A running server for `model`: the recorded one, or a new one (waits until ready)."""
    check_servable(model)
    with _locked():
        info = running_server()
        if info is not None and info.model == model.name:
            return info
        if info is not None:
            _stop(info)
        return _start(model)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(model: LocalModel) -> ServerInfo:
    port = _free_port()
    with _log_file().open("ab") as log:
        proc = subprocess.Popen(
            server_command(model, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command: later runs reuse it
        )
    _STARTED[proc.pid] = proc
    info = ServerInfo(pid=proc.pid, port=port, model=model.name)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(port, timeout=1.0):
        if proc.poll() is not None:
            raise ServerError(
                f"the local model server exited with code {proc.returncode}; see {_log_file()}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise ServerError(f"the local model server did not answer in {START_TIMEOUT_S:g} s")
        time.sleep(0.25)
    _state_file().write_text(json.dumps(asdict(info)))
    return info


def stop_server() -> ServerInfo | None:
    """Stop the recorded server; the one that was stopped, if any."""
    with _locked():
        try:
            data = json.loads(_state_file().read_text())
            info = ServerInfo(pid=int(data["pid"]), port=int(data["port"]), model=data["model"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        _stop(info)
        return info


def _stop(info: ServerInfo) -> None:
    if _ours(info.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _ours(info.pid) and time.monotonic() < deadline:
            _reap(info.pid)
            time.sleep(0.1)
        if _ours(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
        # its command line is gone before it has quite exited: wait for the exit itself
        _reap(info.pid, wait_s=5.0)
    _state_file().unlink(missing_ok=True)


def _reap_exited() -> None:
    """Collect every server this process started that has ended on its own (a crash):
    left alone it stays a zombie, and its pid no longer looks like a server."""
    for pid in list(_STARTED):
        _reap(pid)


def _reap(pid: int, *, wait_s: float = 0.0) -> None:
    """Collect the server if this process started it (else it is not our child),
    waiting up to `wait_s` for it to end."""
    proc = _STARTED.get(pid)
    if proc is None:
        return
    if wait_s:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
    else:
        proc.poll()
    if proc.returncode is not None:
        del _STARTED[pid]
