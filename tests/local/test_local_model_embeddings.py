"""Memory embeddings from the real local model: llama-cpp-python's server started with
`--embedding true` on 127.0.0.1 (it sends one vector per token of this chat model; their
mean is the text's vector). Marked `local_model` (run by .ci/run)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from local_helpers import MODEL, closed_port

from rlmrt.config import MemorySettings
from rlmrt.local import store
from rlmrt.memory.backend import FileMemory

pytestmark = [pytest.mark.local_model]


@pytest.fixture
def embedding_server(real_cache: None, tmp_path: Path) -> Iterator[str]:
    port = closed_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(store.model_path(MODEL)),
        "--model_alias",
        "local-embed",
        "--embedding",
        "true",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "512",
        "--n_threads",
        "1",
    ]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    # leaving the block waits for the process (SIGTERM stops uvicorn at once)
    with proc:
        try:
            url = f"http://127.0.0.1:{port}/v1"
            deadline = time.monotonic() + 120
            while not _answers(f"{url}/models"):
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the embedding server did not answer in 120 s"
                time.sleep(0.25)
            yield url
        finally:
            proc.terminate()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False  # not listening yet


async def test_the_local_model_embeds_memory(
    embedding_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    path = tmp_path / "memory.sqlite"
    settings = MemorySettings(
        path=path, embedding_model="openai/local-embed", embedding_api_base=embedding_server
    )
    memory = FileMemory(path, settings=settings)
    cat = await memory.remember("The cat sleeps on the sofa.", tags=[], pinned=False)
    await memory.remember("The invoice total is 120 EUR.", tags=[], pinned=False)
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT model, dims FROM item_vectors").fetchall()
    assert len(rows) == 2
    assert all(model == "openai/local-embed" and dims > 100 for model, dims in rows)
    # a real model's vectors, mean-pooled: a text is nearest to itself
    found = await memory.recall("The cat sleeps on the sofa.", k=1)
    assert [item.id for item in found] == [cat.id]
    assert caplog.records == []  # no call fell back to the text search
