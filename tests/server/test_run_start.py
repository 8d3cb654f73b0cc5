"""A completion's run sets up while its start commits, and calls its model only once
the start (the run's row and its `run.create` audit record) is stored; a start that
cannot be stored calls no model, fails the request and gives its rate-limit slot back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from serving import InProcessServer, make_keys, repl, server_env, start_in_process

from rlmrt.testing import ChatRequest, ScriptedOpenAIServer

# one run at a time per key: a slot not given back would refuse the next request
TOML = '[sandbox]\nkind = "local"\n\n[server]\nkey_max_concurrent = 1\n'


@dataclass
class StoreSeen:
    """What the database held whenever the root model was called."""

    database: Path
    seen: list[tuple[int, int]] = field(default_factory=list)  # (running runs, run.create)

    def reply(self, request: ChatRequest) -> str:
        if request.is_rlm_root:
            with sqlite3.connect(self.database) as db:
                running = db.execute("SELECT count(*) FROM runs WHERE status = 'running'")
                created = db.execute("SELECT count(*) FROM audit_log WHERE action = 'run.create'")
                self.seen.append((running.fetchone()[0], created.fetchone()[0]))
        return repl("FINAL('done')")


@dataclass
class Setup:
    server: InProcessServer
    model: ScriptedOpenAIServer
    store: StoreSeen

    def complete(self, *, stream: bool) -> httpx.Response:
        return httpx.post(
            f"{self.server.url}/chat/completions",
            headers={"Authorization": f"Bearer {self.server.keys['acme']}"},
            json={
                "model": "rlm",
                "messages": [{"role": "user", "content": "go"}],
                "context": "text",
                "stream": stream,
            },
            timeout=60,
        )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    (tmp_path / "rlm.toml").write_text(TOML)
    database = tmp_path / "home" / "server.db"
    store = StoreSeen(database)
    model = ScriptedOpenAIServer(store.reply)
    model.start()
    try:
        env = server_env(tmp_path / "home", model)
        keys = asyncio.run(make_keys(database))
        server = start_in_process(tmp_path, env)
        server.keys = keys
        try:
            yield Setup(server, model, store)
        finally:
            server.stop()
    finally:
        model.stop()


def test_the_model_is_called_once_the_start_is_stored(setup: Setup) -> None:
    plain = setup.complete(stream=False)
    assert plain.status_code == 200, plain.text
    streamed = setup.complete(stream=True)
    assert streamed.status_code == 200
    assert "data: [DONE]" in streamed.text
    # each root call saw its own run running and its run.create record stored
    assert len(setup.store.seen) == 2
    for number, (running, created) in enumerate(setup.store.seen, start=1):
        assert running >= 1
        assert created == number


@pytest.mark.parametrize("stream", [False, True])
def test_a_start_that_cannot_be_stored_calls_no_model(setup: Setup, stream: bool) -> None:
    with sqlite3.connect(setup.server.database) as db:
        db.execute("ALTER TABLE runs RENAME TO runs_away")
    if stream:  # the stream began (its first chunk) before the start failed: it breaks off
        with pytest.raises(httpx.RemoteProtocolError):
            setup.complete(stream=True)
    else:
        failed = setup.complete(stream=False)
        assert failed.status_code == 500, failed.text
    assert setup.model.requests == []
    with sqlite3.connect(setup.server.database) as db:
        db.execute("ALTER TABLE runs_away RENAME TO runs")
    # the failed request gave its slot back (one run at a time per key)
    again = setup.complete(stream=False)
    assert again.status_code == 200, again.text
    assert len(setup.model.requests) == 1
