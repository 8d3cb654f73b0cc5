"""Memory ranked by embeddings from a real HTTP server on 127.0.0.1 (the scripted
server's `/v1/embeddings`), with the full-text search as the fallback."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlmrt.config import MemorySettings, RLMConfig
from rlmrt.errors import ConfigError, ModelError
from rlmrt.llm.embeddings import embed
from rlmrt.memory.backend import FileMemory
from rlmrt.memory.store import Embedding, MemoryStore
from rlmrt.testing.server import ScriptedOpenAIServer, word_embedder

KEY = "sk-embed-secret"


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    embedder = word_embedder(synonyms={"bill": "invoice"})
    with ScriptedOpenAIServer(lambda req: "unused", embedder=embedder) as server:
        yield server


def _settings(server: ScriptedOpenAIServer, path: Path) -> MemorySettings:
    return MemorySettings(
        path=path,
        embedding_model="openai/scripted-embed",
        embedding_api_base=server.url,
        embedding_api_key=KEY,
    )


def _vector_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM item_vectors").fetchone()[0])


async def test_embed_posts_to_the_openai_compatible_endpoint(
    server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    vectors = await embed(["invoice", "bill"], _settings(server, tmp_path / "m.sqlite"))
    assert vectors[0] == pytest.approx(vectors[1])  # synonyms: one component
    [body] = server.embedding_requests
    assert body == {"model": "scripted-embed", "input": ["invoice", "bill"]}


async def test_recall_ranks_by_vectors_where_full_text_search_misses(
    server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "m.sqlite"
    memory = FileMemory(path, settings=_settings(server, path))
    invoice = await memory.remember("the invoice is due on Friday", tags=[], pinned=False)
    await memory.remember("the cat sleeps on the sofa", tags=[], pinned=False)
    assert _vector_rows(path) == 2

    with MemoryStore(path) as store:
        assert store.recall("bill") == []  # the text search cannot find it
    assert [item.id for item in await memory.recall("bill")] == [invoice.id]

    assert await memory.forget(invoice.id)
    assert _vector_rows(path) == 1
    assert await memory.recall("bill") == []


async def test_items_without_a_vector_follow_the_vector_hits(
    server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "m.sqlite"
    with MemoryStore(path) as store:  # written by text only (e.g. `rlm memory add`)
        plain = store.remember("a bill paid by invoice", kind="lesson")
    memory = FileMemory(path, settings=_settings(server, path))
    embedded = await memory.remember("the invoice is late", tags=[], pinned=False)
    assert [item.id for item in await memory.recall("invoice")] == [embedded.id, plain.id]


async def test_first_prompt_lessons_are_ranked_by_vectors(
    server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "m.sqlite"
    settings = _settings(server, path)
    [vector] = await embed(["check the invoice totals"], settings)
    with MemoryStore(path) as store:
        store.remember("the sofa is blue", kind="lesson")
        lesson = store.remember(
            "check the invoice totals",
            kind="lesson",
            embedding=Embedding("openai/scripted-embed", vector),
        )
        store.remember("bill the customer", kind="fact")  # not a lesson
        assert store.recall("sum bill", kind="lesson") == []
    memory = FileMemory(path, settings=settings)
    _, found = await memory.for_prompt("sum bill", lessons=2)
    assert [item.id for item in found] == [lesson.id]


async def test_a_failing_embedding_server_falls_back_to_full_text_search(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> list[float]:
        raise RuntimeError("model not loaded")

    path = tmp_path / "m.sqlite"
    caplog.set_level(logging.WARNING)
    with ScriptedOpenAIServer(lambda req: "unused", embedder=broken) as server:
        settings = _settings(server, path)
        memory = FileMemory(path, settings=settings)
        item = await memory.remember("the invoice is due", tags=[], pinned=False)
        assert _vector_rows(path) == 0
        assert [hit.id for hit in await memory.recall("invoice")] == [item.id]
        with pytest.raises(ModelError, match="HTTP 500") as failed:
            await embed(["x"], settings)
        assert f"{server.url}/embeddings" in str(failed.value)
        url = server.url
    # the server is gone: recall still answers from the text search
    assert [hit.id for hit in await memory.recall("invoice")] == [item.id]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all(f"{url}/embeddings" in r.getMessage() for r in warnings)
    assert "HTTP 500" in warnings[0].getMessage()
    assert "could not be reached" in warnings[2].getMessage()
    assert KEY not in caplog.text


async def test_off_by_default_no_embedding_call_and_no_vectors(
    server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "m.sqlite"
    memory = FileMemory(path, settings=MemorySettings(path=path))
    item = await memory.remember("the invoice is due", tags=[], pinned=False)
    assert [hit.id for hit in await memory.recall("invoice")] == [item.id]
    await memory.for_prompt("invoice", lessons=3)
    assert server.embedding_requests == []
    assert _vector_rows(path) == 0


def test_the_key_is_a_secret() -> None:
    config = RLMConfig(memory=MemorySettings(embedding_api_key=KEY))
    assert KEY not in repr(config)
    assert config.public_dict()["memory"]["embedding_api_key"] == "***"


async def test_token_vectors_are_averaged(tmp_path: Path) -> None:
    """llama.cpp's server on a chat model sends one vector per token: their mean counts."""

    def per_token(text: str) -> list[list[float]]:
        return [[1.0, 0.0] if word == "a" else [0.0, 1.0] for word in text.split()]

    with ScriptedOpenAIServer(lambda req: "unused", embedder=per_token) as server:  # type: ignore[arg-type]
        vectors = await embed(["a b b b", "a"], _settings(server, tmp_path / "m.sqlite"))
    assert vectors == [[0.25, 0.75], [1.0, 0.0]]


async def test_other_providers_go_through_litellm(tmp_path: Path) -> None:
    def broken(text: str) -> list[float]:
        raise RuntimeError("model not loaded")

    with ScriptedOpenAIServer(lambda req: "unused") as server:
        settings = MemorySettings(
            path=tmp_path / "m.sqlite",
            embedding_model="hosted_vllm/scripted-embed",
            embedding_api_base=server.url,
            embedding_api_key=KEY,
        )
        [vector] = await embed(["invoice"], settings)
        assert [body["model"] for body in server.embedding_requests] == ["scripted-embed"]
        server.embedder = broken
        with pytest.raises(ModelError, match=r"hosted_vllm/scripted-embed.*HTTP 500") as failed:
            await embed(["invoice"], settings)
    assert vector == pytest.approx(word_embedder()("invoice"))
    assert failed.value.status == 500
    assert KEY not in str(failed.value)


async def test_bad_replies_and_settings_are_named_errors(tmp_path: Path) -> None:
    """No model set, or a server whose reply is not one list of numbers per text: a
    named error (the memory then falls back), never a wrong vector."""
    with pytest.raises(ConfigError, match=r"\[memory\] embedding_model"):
        await embed(["x"], MemorySettings(path=tmp_path / "m.sqlite"))

    replies: list[object] = []

    def scripted_reply(text: str) -> list[float]:
        return replies.pop(0)  # type: ignore[return-value]

    with ScriptedOpenAIServer(lambda req: "unused", embedder=scripted_reply) as server:
        settings = _settings(server, tmp_path / "m.sqlite")
        assert await embed([], settings) == []
        assert server.embedding_requests == []  # nothing to embed: no call
        for reply in ("not numbers", [], [[1.0, 0.0], [1.0]]):
            replies.append(reply)
            with pytest.raises(ModelError, match="not a list of embeddings"):
                await embed(["x"], settings)
