"""Embeddings of memory texts, from the model `[memory] embedding_model` names.

An OpenAI-compatible server (an `openai/...` model with `embedding_api_base`: vLLM,
Ollama, llama.cpp's server) is asked over httpx directly; any other provider goes
through `litellm.aembedding`, imported on first use only. Every failure is a
`ModelError` naming the endpoint (and the status when there is one), never the key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from rlmrt.errors import ConfigError, ModelError
from rlmrt.observe.redact import redacted

if TYPE_CHECKING:
    from rlmrt.config import MemorySettings

TIMEOUT_S = 30.0
_BODY_CHARS = 300


async def embed(texts: Sequence[str], settings: MemorySettings) -> list[list[float]]:
    """One vector per text, in order, from the configured embedding model."""
    model = settings.embedding_model
    if not model:
        raise ConfigError("no embedding model is set ([memory] embedding_model)")
    if not texts:
        return []
    key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
    base = settings.embedding_api_base
    if base and model.startswith("openai/"):
        vectors = await _openai_compatible(model.removeprefix("openai/"), texts, base, key)
    else:
        vectors = await _litellm(model, texts, base, key)
    where = base or model
    if len(vectors) != len(texts):
        raise ModelError(
            f"the embedding endpoint {where} returned {len(vectors)} vectors for {len(texts)} texts"
        )
    return vectors


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors of one length (0.0 when either is all zeros)."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm else 0.0


async def _openai_compatible(
    name: str, texts: Sequence[str], base: str, key: str | None
) -> list[list[float]]:
    url = base.rstrip("/") + "/embeddings"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
            response = await client.post(
                url, json={"model": name, "input": list(texts)}, headers=headers
            )
    except httpx.HTTPError as exc:
        raise ModelError(
            f"the embedding endpoint {url} could not be reached ({type(exc).__name__})"
        ) from exc
    if response.status_code != 200:
        body = redacted(response.text[:_BODY_CHARS], [key] if key else [])
        raise ModelError(
            f"the embedding endpoint {url} answered HTTP {response.status_code}: {body}",
            status=response.status_code,
            body=body,
        )
    try:
        data = response.json()["data"]
        ordered = sorted(data, key=lambda item: int(item["index"]))
        return [_vector(item["embedding"]) for item in ordered]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"the embedding endpoint {url} sent a reply that is not a list of embeddings"
        ) from exc


async def _litellm(
    model: str, texts: Sequence[str], base: str | None, key: str | None
) -> list[list[float]]:
    from rlmrt.llm._litellm import import_litellm

    litellm = import_litellm()
    kwargs: dict[str, Any] = {"model": model, "input": list(texts)}
    if base:
        kwargs["api_base"] = base
    if key:
        kwargs["api_key"] = key
    try:
        response = await litellm.aembedding(**kwargs)
    except Exception as exc:  # LiteLLM raises many kinds; to memory all are one failure
        status = getattr(exc, "status_code", None)
        raise ModelError(
            f"the embedding model {model}{f' at {base}' if base else ''} failed"
            f"{f' with HTTP {status}' if status else ''} ({type(exc).__name__})",
            status=status if isinstance(status, int) else None,
        ) from exc
    try:
        return [_vector(_field(item, "embedding")) for item in response.data]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the embedding model {model} sent no list of embeddings") from exc


def _field(item: object, name: str) -> object:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _vector(raw: object) -> list[float]:
    """An embedding as floats; one vector per token (llama.cpp's server on a chat model
    that pools nothing) becomes their mean."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("an embedding is a non-empty list of numbers")
    if all(isinstance(row, list) for row in raw):
        rows = [[float(x) for x in row] for row in raw]
        if not rows[0] or any(len(row) != len(rows[0]) for row in rows):
            raise ValueError("token embeddings of one text have one length")
        return [math.fsum(column) / len(rows) for column in zip(*rows, strict=True)]
    return [float(x) for x in raw]
