"""A server that dies mid-run (SIGKILL) leaves no run "running" forever: another server
on the same database marks it failed once the dead one's heartbeat is stale; its
events and trajectory stay readable."""

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


def test_a_run_of_a_killed_server_is_failed_by_another_and_stays_readable(
    tmp_path: Path, serve: Callable[..., ScriptedOpenAIServer]
) -> None:
    (tmp_path / "rlm.toml").write_text('[sandbox]\nkind = "local"\n')
    env = server_env(tmp_path / "home", serve(stalling_model))
    env.update(RLM_SERVER__HEARTBEAT_S="0.3", RLM_SERVER__INSTANCE_STALE_S="2")
    keys = asyncio.run(make_keys(tmp_path / "home" / "server.db"))
    key = keys["acme"]
    first = start_server(tmp_path, env)
    try:
        started = httpx.post(
            f"{first.url}/runs",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "rlm", "messages": [{"role": "user", "content": "go"}]},
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        deadline = time.monotonic() + WAIT_S
        while "model_call_started" not in kinds(first.root, run_id, key):
            assert time.monotonic() < deadline, first.log_text()
            time.sleep(0.05)
        assert get(first.root, f"/runs/{run_id}", key).json()["status"] == "running"
    finally:
        killed = first.stop(sig=signal.SIGKILL)
    assert killed == -signal.SIGKILL

    (tmp_path / "second").mkdir()
    (tmp_path / "second" / "rlm.toml").write_text('[sandbox]\nkind = "local"\n')
    second = start_server(tmp_path / "second", env)
    try:
        deadline = time.monotonic() + WAIT_S
        while (run := get(second.root, f"/runs/{run_id}", key).json())["status"] == "running":
            assert time.monotonic() < deadline, run
            time.sleep(0.1)
        assert run["status"] == "failed"
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
