"""Helpers of the API server tests: `rlm serve` started for real on 127.0.0.1 (a free
port), pointed at a scripted model server; the scripted model; tenants and keys."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn

from rlmrt.config import load_config
from rlmrt.server.app import create_app
from rlmrt.server.storage import Store
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

PROVIDER_KEY = "sk-provider-SECRET-0123456789"
RLM = [sys.executable, "-m", "rlmrt.cli.main"]
START_TIMEOUT_S = 60


def repl(code: str) -> str:
    return f"```repl\n{code}\n```"


def model_reply(request: ChatRequest) -> Reply | str:
    """The scripted model: the root answers the length of its context; questions with a
    marker ask for the other cases."""
    if not request.is_rlm_root:
        return "sub"
    text = request.last_user_text + " ".join(str(m.get("content")) for m in request.messages)
    if "PLEASE FAIL" in text:
        return Reply(status=401, error_body={"error": {"message": f"bad key {PROVIDER_KEY}"}})
    if "SLOW" in text:
        return Reply(text=repl("FINAL('slow answer')"), delay_s=2.0)
    if "NEVER ANSWER" in text:
        return repl("x = 1")
    if "The answer must be a value of type" in text:  # a typed run (response_format)
        return repl("FINAL({'length': len(context), 'unit': 'chars'})")
    if "PLEASE REMEMBER " in text:  # pin the word after it in the tenant's memory
        note = text.split("PLEASE REMEMBER ", 1)[1].split()[0]
        return repl(f"FINAL(memory.remember({note!r}, pin=True))")
    if "PLEASE RECALL" in text:  # what code recalls, and whether a pinned note was shown
        shown = "(pinned):" in text
        return repl(f"FINAL(repr([h['text'] for h in memory.recall('note')]) + ' {shown}')")
    return repl("FINAL(str(len(context)))")


RLM_TOML = """
[sandbox]
kind = "local"

[server.profiles.short]
max_iterations = 1

[server.profiles.budget]
daily_usd = 0.01
prices = { "openai/test-model" = { input_per_mtok = 1000, output_per_mtok = 1000 } }
"""


@dataclass
class Served:
    """A running API server: its URLs, log file and home folder (its database)."""

    root: str  # http://127.0.0.1:PORT
    log: Path
    home: Path
    keys: dict[str, str] = field(default_factory=dict)  # name -> the key itself

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    @property
    def database(self) -> Path:
        return self.home / "server.db"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass(kw_only=True)
class APIServer(Served):
    """`rlm serve` as a process."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def stop(self, timeout_s: float = 30, sig: int = signal.SIGTERM) -> int:
        """`sig` (SIGTERM) by PID, then wait for it (reaped); its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@dataclass(kw_only=True)
class InProcessServer(Served):
    """The app of `create_app` served by uvicorn on a thread of the test process (its
    code is measured by coverage), its log (uvicorn's and rlmrt's) in a file."""

    server: uvicorn.Server
    thread: threading.Thread
    handler: logging.Handler
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.handler)
        self.handler.close()
        assert not self.thread.is_alive()


LOGGERS = ("uvicorn.error", "uvicorn.access", "rlmrt")


def server_env(home: Path, model: ScriptedOpenAIServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
    env.update(
        RLMRT_HOME=str(home),
        RLM_LLM__MODEL="openai/test-model",
        RLM_LLM__API_BASE=model.url,
        RLM_LLM__API_KEY=PROVIDER_KEY,
        RLM_LLM__MAX_RETRIES="0",
        RLM_TRAJECTORY__DIR=str(home / "runs"),
        # as the defaults, said here: an in-process server reads this `env`, not RLMRT_HOME
        RLM_SERVER__DATABASE_URL=f"sqlite+aiosqlite:///{home / 'server.db'}",
        RLM_SERVER__FILES_DIR=str(home / "files"),
    )
    return env


def start_server(folder: Path, env: dict[str, str], *args: str) -> APIServer:
    """`rlm serve --port 0` in `folder` (its rlm.toml), once it answers /healthz."""
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*RLM, "serve", "--port", "0", *args],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            text = log.read_text(errors="replace")
            found = re.search(r"on (http://127\.0\.0\.1:\d+)/v1", text)
            if found and "Application startup complete" in text:
                home = Path(env["RLMRT_HOME"])
                url = found.group(1)
                server = APIServer(root=url, log=log, home=home, process=process, env=env)
                assert httpx.get(f"{server.root}/healthz").status_code == 200
                return server
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"rlm serve did not start; its output:\n{text}")
            time.sleep(0.1)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        raise


def start_in_process(folder: Path, env: dict[str, str]) -> InProcessServer:
    """The app of `folder`'s rlm.toml and `env` under uvicorn on a thread, on a free port."""
    config = load_config(config_file=folder / "rlm.toml", env=env)
    app = create_app(config)
    log = folder / "server.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws="none", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    return InProcessServer(
        root=f"http://127.0.0.1:{port}",
        sock=sock,
        log=log,
        home=Path(env["RLMRT_HOME"]),
        server=server,
        thread=thread,
        handler=handler,
    )


async def make_keys(database: Path) -> dict[str, str]:
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        await store.create_tenant("acme")
        await store.create_tenant("beta")
        keys = {
            "acme": (await store.create_key("acme"))[0],
            "beta": (await store.create_key("beta"))[0],
            "revoked": (await store.create_key("acme"))[0],
            "expired": (await store.create_key("acme", expires_in=timedelta(seconds=1)))[0],
        }
        await store.revoke_key(keys["revoked"])
        return keys
    finally:
        await store.aclose()


@contextmanager
def serving(
    folder: Path, toml: str, make: Callable[[Path], Awaitable[dict[str, str]]] = make_keys
) -> Iterator[InProcessServer]:
    """An in-process server of `toml` in `folder` on the scripted model, with the keys
    `make` creates in its database (by name in `.keys`); stopped at the end."""
    (folder / "rlm.toml").write_text(toml)
    model = ScriptedOpenAIServer(model_reply)
    model.start()
    try:
        env = server_env(folder / "home", model)
        keys = asyncio.run(make(folder / "home" / "server.db"))
        server = start_in_process(folder, env)
        server.keys = keys
        try:
            yield server
        finally:
            server.stop()
    finally:
        model.stop()
