"""A sandbox host (`rlm sandbox serve`) in its own process on 127.0.0.1, for the suites
parametrized on the "remote" kind: started by a fixture, stopped by its PID and reaped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import KubeCluster

TOKEN = "remote-suite-token-5d1e"
SERVE = (sys.executable, "-m", "rlmrt.cli.main", "sandbox", "serve")


@dataclass
class HostProcess:
    """A running sandbox host: its address, token and process."""

    url: str
    token: str
    process: subprocess.Popen[str]
    log: Path

    @property
    def options(self) -> dict[str, Any]:
        return {"url": self.url, "token": self.token}

    def stop(self) -> None:
        """SIGTERM by PID (the host closes its sandboxes), SIGKILL if it hangs; reaped."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_host(
    folder: Path, *args: str, env: dict[str, str] | None = None, port: int = 0
) -> HostProcess:
    """`rlm sandbox serve` on 127.0.0.1 (port 0: any free one), in `folder`, its stderr
    in folder/host.log; returns once it listens."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "host.log"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "RLMRT_HOME": str(folder / "home"),
        "RLM_SANDBOX_HOST_TOKEN": TOKEN,
        **(env or {}),
    }
    if "PYTHONPATH" in os.environ:
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    with log.open("a") as errors:
        process = subprocess.Popen(
            [*SERVE, "--listen", f"127.0.0.1:{port}", "--sandbox-pool", "1", *args],
            cwd=folder,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith(("ws://", "wss://")):
        process.wait(10)
        raise RuntimeError(f"the sandbox host did not start: {log.read_text()[-2000:]}")
    return HostProcess(url, TOKEN, process, log)


def kind_options(request: pytest.FixtureRequest, kind: str) -> dict[str, Any]:
    """What `Sandbox(kind, ...)` / `create_backend` needs beyond the limits: for
    "remote", the address and token of the session's sandbox host; for "kubernetes", the
    kubeconfig of this machine's cluster (started now, or the test skips)."""
    if kind == "kubernetes":
        cluster: KubeCluster = request.getfixturevalue("kube_cluster")
        return cluster.options()
    if kind != "remote":
        return {}
    host: HostProcess = request.getfixturevalue("remote_host")
    return host.options


def kind_params(kinds: list[str]) -> list[Any]:
    """`kinds` as pytest params; "kubernetes" carries its marker."""
    return [
        pytest.param(kind, marks=pytest.mark.kubernetes) if kind == "kubernetes" else kind
        for kind in kinds
    ]


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CuttableProxy:
    """A TCP relay on 127.0.0.1 to a sandbox host, whose open connections `cut` drops
    (a network failure between client and host); new connections go through again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def aclose(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            _copy(reader, up_writer), _copy(up_reader, writer), return_exceptions=True
        )


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.transport.abort()


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


#: what a run of `depth_two_model` answers: "top" with context "ctx" (`rlm_query_batched`
#: over two parts, each asking a depth-2 `rlm_query` whose code calls `llm_query_batched`)
DEPTH_TWO_ANSWER = "3:leaf(leaf for aaa) + 4:leaf(leaf for bbbb)"


def depth_two_model(probe: str) -> Any:
    """A scripted model's handler for a whole run at depth 2 with batched sub-calls;
    `probe` is code the root runs first (its output is the first `CodeExecuted`)."""
    from rlmrt.testing import ChatRequest

    def handler(request: ChatRequest) -> str:
        if not request.is_rlm_root:
            return f"leaf({request.last_user_text})"
        asked = request.messages[1]["content"].split("Question: ", 1)[1].split("\n", 1)[0]
        turns = sum(1 for m in request.messages if m["role"] == "assistant")
        if asked == "top":
            if turns == 0:
                return repl(
                    probe + "parts = rlm_query_batched(['part A', 'part B'], ['aaa', 'bbbb'])\n"
                    "print(parts)"
                )
            return repl("FINAL(' + '.join(parts))")
        if asked.startswith("part"):
            return repl(
                "deeper = rlm_query('inner ' + context, context=context)\n"
                "FINAL(f'{len(context)}:{deeper}')"
            )
        assert asked.startswith("inner"), asked
        return repl("FINAL(llm_query_batched(['leaf for ' + context])[0])")

    return handler
