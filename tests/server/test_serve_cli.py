"""`rlm serve` as a process: graceful SIGTERM, its start-up checks and messages."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from serving import APIServer, make_keys, model_reply, server_env, start_server

from rlmrt.cli.serve_cmd import _bind
from rlmrt.server.storage import Store
from rlmrt.testing import ScriptedOpenAIServer

pytestmark = pytest.mark.slow  # each test starts its own server process


def prepared(folder: Path, serve: Callable[..., ScriptedOpenAIServer]) -> dict[str, str]:
    (folder / "rlm.toml").write_text('[sandbox]\nkind = "local"\n\n[server.profiles.short]\n')
    return server_env(folder / "home", serve(model_reply))


def test_sigterm_lets_the_request_under_way_finish_then_exits_0(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    env = prepared(tmp_path, serve)
    keys = asyncio.run(make_keys(tmp_path / "home" / "server.db"))
    server = start_server(tmp_path, env)
    answers: list[str | None] = []

    def ask() -> None:  # with the openai client, as a user of `rlm serve` would
        with openai.OpenAI(base_url=server.url, api_key=keys["acme"], max_retries=0) as client:
            reply = client.chat.completions.create(
                model="rlm", messages=[{"role": "user", "content": "SLOW"}], timeout=30
            )
        answers.append(reply.choices[0].message.content)

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.8)  # the request is in the server, its model reply takes 2 s
    assert server.stop() == 0
    asker.join(timeout=30)
    assert answers == ["slow answer"]
    log = server.log_text()
    assert "Shutting down" in log and log.rstrip().endswith("server stopped")

    async def statuses() -> list[str]:
        store = await Store.open(f"sqlite+aiosqlite:///{server.database}")
        try:
            return [run.status for run in await store.runs()]
        finally:
            await store.aclose()

    assert asyncio.run(statuses()) == ["completed"]


def test_without_keys_it_warns_that_every_request_gets_401(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    server = start_server(tmp_path, prepared(tmp_path, serve), "--profile", "short")
    try:
        assert "warning: no usable API key yet, every /v1 request gets 401" in server.log_text()
        assert "models (profiles): short" in server.log_text()
        response = httpx.get(f"{server.url}/models")
        assert response.status_code == 401
    finally:
        assert server.stop(sig=signal.SIGINT) == 0  # Ctrl-C ends it as gracefully
    assert server.log_text().rstrip().endswith("server stopped")


def test_only_the_profiles_asked_for_are_served(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    env = prepared(tmp_path, serve)
    keys = asyncio.run(make_keys(tmp_path / "home" / "server.db"))
    server: APIServer = start_server(tmp_path, env, "--profile", "short")
    try:
        models = httpx.get(
            f"{server.url}/models", headers={"Authorization": f"Bearer {keys['beta']}"}
        )
        assert [m["id"] for m in models.json()["data"]] == ["short"]
        assert "warning" not in server.log_text()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--profile", "nope"), "error: no profile 'nope' (profiles: rlm, short)"),
        (("--port", "70000"), "less than or equal to 65535"),
        (("--max-depth", "99"), "error: invalid settings: budget.max_depth (--max-depth)"),
    ],
)
def test_bad_start_arguments_are_one_line(
    tmp_path: Path,
    serve: Callable[..., ScriptedOpenAIServer],
    run_cli: Callable[..., Any],
    args: tuple[str, ...],
    message: str,
) -> None:
    result = run_cli(prepared(tmp_path, serve), "serve", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_named(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer], run_cli: Callable[..., Any]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(prepared(tmp_path, serve), "serve", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_a_profile_that_cannot_run_stops_the_start(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer], run_cli: Callable[..., Any]
) -> None:
    env = prepared(tmp_path, serve)
    # no model and no provider key: the local model, which is not downloaded here
    env = {
        k: v
        for k, v in env.items()
        if k not in ("RLM_LLM__MODEL", "RLMRT_MODELS_DIR") and not k.endswith("_API_KEY")
    }
    result = run_cli(env, "serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: the local model")
    assert "is not downloaded" in result.stderr and "Traceback" not in result.stderr


async def test_the_listening_socket_gets_connections_without_nagle() -> None:
    """asyncio turns Nagle off (TCP_NODELAY) only on sockets made with IPPROTO_TCP; with
    it on, an answer's body waited for the client's delayed ACK of its headers (~40 ms
    on every request, bench/README.md)."""
    sock = _bind("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
    try:
        assert await asyncio.wait_for(accepted, 10) != 0
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
