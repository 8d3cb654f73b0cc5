"""Servers sharing one database: a server that dies mid-run (SIGKILL) leaves no run
"running" forever (another marks it failed once the dead one's heartbeat is stale; its
events and trajectory stay readable); a run is cancelled through another replica; a
server stopped by SIGTERM fails its unfinished runs."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import make_keys, repl, server_env, start_server

from rlmrt.server.storage import Store
from rlmrt.testing import ChatRequest, Reply, ScriptedOpenAIServer

pytestmark = pytest.mark.slow  # each test starts its own server processes

WAIT_S = 30


def stalling_model(request: ChatRequest) -> Reply | str:
    """The root takes a minute to answer: the run is mid-way when its server dies."""
    if request.is_rlm_root:
        return Reply(text=repl("FINAL('late')"), delay_s=60)
    return "sub"


def get(root: str, path: str, key: str) -> httpx.Response:
    return httpx.get(f"{root}/v1{path}", headers={"Authorization": f"Bearer {key}"})


def prepared(tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]) -> dict[str, str]:
    """The environment of servers on one database, with fast heartbeats."""
    (tmp_path / "rlm.toml").write_text('[sandbox]\nkind = "local"\n')
    env = server_env(tmp_path / "home", serve(stalling_model))
    env.update(RLM_SERVER__HEARTBEAT_S="0.3", RLM_SERVER__INSTANCE_STALE_S="2")
    return env


def beside(tmp_path: Path, name: str) -> Path:
    """Another folder for another server (its own log), with the same rlm.toml."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "rlm.toml").write_text((tmp_path / "rlm.toml").read_text())
    return folder


def start_run(root: str, key: str) -> str:
    """A run started on the server at `root`, once its model call is under way."""
    started = httpx.post(
        f"{root}/v1/runs",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "rlm", "messages": [{"role": "user", "content": "go"}]},
    )
    assert started.status_code == 202, started.text
    run_id: str = started.json()["id"]
    deadline = time.monotonic() + WAIT_S
    while "model_call_started" not in kinds(root, run_id, key):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run_id


def status_after(root: str, run_id: str, key: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (run := get(root, f"/runs/{run_id}", key).json())["status"] != status:
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    return dict(run)


def test_a_run_of_a_killed_server_is_failed_by_another_and_stays_readable(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    env = prepared(tmp_path, serve)
    keys = asyncio.run(make_keys(tmp_path / "home" / "server.db"))
    key = keys["acme"]
    first = start_server(tmp_path, env)
    try:
        run_id = start_run(first.root, key)
        assert get(first.root, f"/runs/{run_id}", key).json()["status"] == "running"
    finally:
        killed = first.stop(sig=signal.SIGKILL)
    assert killed == -signal.SIGKILL

    second = start_server(beside(tmp_path, "second"), env)
    try:
        run = status_after(second.root, run_id, key, "failed")
        assert run["error"] == "the server running it stopped"
        assert run["stop_reason"] == "server_stopped" and run["finished_at"] is not None

        seen = kinds(second.root, run_id, key)
        assert seen[0] == "run_started" and "model_call_started" in seen
        with httpx.stream(
            "GET",
            f"{second.url}/runs/{run_id}/events",
            headers={"Authorization": f"Bearer {key}"},
            timeout=WAIT_S,
        ) as stream:
            text = "".join(stream.iter_text())
        assert text.endswith('event: end\ndata: {"status": "failed"}\n\n')
        assert f"id: {len(seen)}\n" in text
    finally:
        assert second.stop() == 0

    async def audited() -> list[tuple[str, str, dict[str, Any]]]:
        store = await Store.open(f"sqlite+aiosqlite:///{second.database}")
        try:
            records = await store.audit_records()
            assert (await store.verify_audit())[1] is None
        finally:
            await store.aclose()
        target = run_id.removeprefix("run-")
        return [(r.action, r.actor, json.loads(r.detail)) for r in records if r.target == target]

    assert asyncio.run(audited())[-1] == (
        "run.finish",
        "server",
        {"status": "failed", "stop_reason": "server_stopped", "total_tokens": 0},
    )


def kinds(root: str, run_id: str, key: str) -> list[str]:
    trajectory = get(root, f"/runs/{run_id}/trajectory", key).json()
    return [event["kind"] for event in trajectory["events"]]


def test_a_cancel_through_another_replica_and_a_stop_by_sigterm(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    env = prepared(tmp_path, serve)
    key = asyncio.run(make_keys(tmp_path / "home" / "server.db"))["acme"]
    running = start_server(tmp_path, env)
    other = start_server(beside(tmp_path, "other"), env)
    try:
        run_id = start_run(running.root, key)
        asked = httpx.post(
            f"{other.url}/runs/{run_id}/cancel", headers={"Authorization": f"Bearer {key}"}
        )
        assert asked.status_code == 202 and asked.json()["status"] == "running"
        cancelled = status_after(running.root, run_id, key, "cancelled")
        assert cancelled["error"] == "cancelled"

        second_run = start_run(running.root, key)
        assert running.stop() == 0  # SIGTERM: its unfinished run fails
        failed = status_after(other.root, second_run, key, "failed")
        assert failed["error"] == "the server running it stopped"
        assert "model_call_started" in kinds(other.root, second_run, key)
    finally:
        running.stop()
        other.stop()
