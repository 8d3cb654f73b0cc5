"""`OpenAICompatibleClient`: the fast path for OpenAI-compatible servers.

It speaks the chat-completions API directly over aiohttp (already installed with
LiteLLM). Runs fan out into many concurrent sub-calls, and the per-request cost of the
client decides how many are really in flight: measured here, the OpenAI SDK on httpx
spends ~1.5 ms of CPU per call and httpcore's pool re-checks every pooled connection
on each request and release (two system calls each, so a wave of K calls costs ~K²),
which left 13 of 64 batched calls in flight at 50 ms model latency. aiohttp's pool
does neither. Retries and error mapping are `LiteLLMClient`'s (`rlmrt.llm._retry`).

Model ids: ``"openai/<name>"`` or a bare ``"<name>"``; the server receives ``<name>``.
Any other id is sent unchanged (the server may be a proxy that understands it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from rlmrt.errors import ModelAuthError, ModelResponseError
from rlmrt.llm._chat import cut_reply
from rlmrt.llm._configured import ConfiguredClient
from rlmrt.llm._retry import HTTPStatusFailure, RetryPolicy, Target, with_retries
from rlmrt.llm._usage import token_counts
from rlmrt.llm.base import ChatMessage, DeltaCallback, ModelReply

if TYPE_CHECKING:
    from rlmrt.config import RLMConfig

DEFAULT_API_BASE = "https://api.openai.com/v1"


def wire_model_name(model: str) -> str:
    """The name the server gets: ``"openai/gpt-4o-mini"`` -> ``"gpt-4o-mini"``."""
    return model.removeprefix("openai/")


class OpenAICompatibleClient(ConfiguredClient):
    """A model client for any server speaking the OpenAI chat-completions API.

    `api_key` defaults to OPENAI_API_KEY; a server that needs no key still needs a
    non-empty value (it is sent as a bearer token). `max_connections` bounds the
    connection pool shared by concurrent calls.

    The pool belongs to the event loop of the first call; a call from another loop
    gets a new pool. `aclose()` closes the pool of the loop it runs on.
    """

    def __init__(
        self,
        *,
        model: str,
        api_base: str | None = None,
        max_connections: int = 128,
        **settings: Any,
    ) -> None:
        super().__init__(
            model=model, api_base=(api_base or DEFAULT_API_BASE).rstrip("/"), **settings
        )
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._headers: dict[str, str] = {}
        self._url = f"{self.api_base}/chat/completions"

    @classmethod
    def config_arguments(
        cls, config: RLMConfig, *, retry: RetryPolicy | None = None
    ) -> dict[str, Any]:
        arguments = super().config_arguments(config, retry=retry)
        arguments["max_connections"] = max(64, config.budget.max_concurrency)
        return arguments

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        on_delta: DeltaCallback | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ModelReply:
        name = model or self.model
        session = self._http_session()
        target = Target(
            model=name,
            where=f"the model server at {self.api_base}",
            key_hint=_KEY_HINT,
            timeout_s=self.request_timeout_s,
        )
        payload: dict[str, Any] = {"model": wire_model_name(name), "messages": list(messages)}
        temperature = self.temperature if temperature is None else temperature
        if temperature is not None:
            payload["temperature"] = temperature
        seed = self.seed if seed is None else seed
        if seed is not None:
            payload["seed"] = seed
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        if response_format is not None:
            payload["response_format"] = response_format
        if on_delta is not None:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        body = _encode(payload)
        del payload
        limit = self.max_reply_chars

        async def call() -> ModelReply:
            async with session.post(self._url, data=body, headers=self._headers) as response:
                if response.status != 200:
                    raise HTTPStatusFailure(
                        response.status, await response.text(), dict(response.headers)
                    )
                if on_delta is None:
                    return await _read_reply(response, name, limit)
                return await _collect_stream(response, name, on_delta, target.where, limit)

        return await with_retries(call, policy=self.retry, target=target)

    async def aclose(self) -> None:
        session, self._session, self._loop = self._session, None, None
        if session is not None and not session.closed:
            await session.close()

    def _http_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session
        key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ModelAuthError(f"no API key for the model server at {self.api_base}. {_KEY_HINT}")
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(
            limit=self.max_connections, limit_per_host=self.max_connections
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.request_timeout_s),
            raise_for_status=False,
        )
        self._loop = loop
        return self._session


def _encode(payload: dict[str, Any]) -> bytes:
    """The request body. orjson is ~13x faster than json on large prompts (0.2 ms for
    800 KB here), which is most of a sub-call's CPU cost; it refuses strings holding
    lone surrogates, which json escapes instead."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload).encode()


async def _read_reply(response: aiohttp.ClientResponse, model: str, limit: int) -> ModelReply:
    """A non-streamed reply, read up to what `limit` characters of text can take.

    Past that, reading stops and the text is the first `limit` characters of the
    message's content, taken from the part of the body that was read (the usage, sent
    after it, is lost: output tokens are estimated at 4 characters each)."""
    cap = limit * _MAX_BYTES_PER_CHAR + _ENVELOPE_BYTES
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            response.close()
            text = _content_prefix(b"".join(chunks), limit, model)
            return ModelReply(
                text=text, model=model, output_tokens=len(text) // 4 + 1, cut_at=len(text)
            )
    return cut_reply(_reply_from_json(orjson.loads(b"".join(chunks)), model), limit)


# a character of a JSON string takes at most 6 bytes (\uXXXX); the rest of the body is small
_MAX_BYTES_PER_CHAR = 6
_ENVELOPE_BYTES = 1 << 16
_CONTENT_KEY = re.compile(rb'"content"\s*:\s*"')
_STRING_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
_PARTIAL_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{0,3}$")


def _content_prefix(body: bytes, limit: int, model: str) -> str:
    """The first `limit` characters of the first message's content in a JSON body
    that was cut off."""
    found = _CONTENT_KEY.search(body)
    if found is None:
        raise ModelResponseError(
            f"the reply for model {model!r} is over max_reply_chars and holds no message content"
        )
    raw = body[found.end() : found.end() + limit * _MAX_BYTES_PER_CHAR]
    text = raw.decode("utf-8", "ignore")  # only a character cut at the end is lost
    matched = _STRING_BODY.match(text)
    inner = _PARTIAL_ESCAPE.sub("", matched.group() if matched else "")
    value: str = json.loads(f'"{inner}"')
    return value[:limit]


def _reply_from_json(data: Any, model: str) -> ModelReply:
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ModelResponseError(f"the reply for model {model!r} has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    return _reply(str(message.get("content") or ""), model, data.get("usage"), choice)


async def _collect_stream(
    response: aiohttp.ClientResponse, model: str, on_delta: DeltaCallback, where: str, limit: int
) -> ModelReply:
    """Server-sent events: pass each text piece to `on_delta`, assemble the reply.
    Reading stops after `limit` characters of text (`ModelReply.cut_at`).

    A failure after text was handed out cannot be retried (the caller already showed
    it): it becomes a `ModelResponseError`. Before that, the error propagates so the
    call can be retried.
    """
    parts: list[str] = []
    usage: Any = None
    last_choice: dict[str, Any] = {}
    done = False
    size = 0
    try:
        line_cap = limit * _MAX_BYTES_PER_CHAR + _ENVELOPE_BYTES
        async for raw, whole in _sse_lines(response, line_cap):
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            if not whole:  # one event over the cap: its text's start is all we keep
                prefix = _content_prefix(data, limit - size, model)
                parts.append(prefix)
                on_delta(prefix)
                size += len(prefix)
                return _cut_stream(response, parts, model, usage, last_choice)
            chunk = orjson.loads(data)
            usage = chunk.get("usage") or usage
            for choice in (chunk.get("choices") or [])[:1]:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    text = text[: limit - size]
                    size += len(text)
                    parts.append(text)
                    on_delta(text)
                if choice.get("finish_reason"):
                    last_choice = choice
            if size >= limit:
                return _cut_stream(response, parts, model, usage, last_choice)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        if not parts:
            raise
        raise ModelResponseError(
            f"the reply stream from {where} broke off after "
            f"{sum(map(len, parts))} characters ({type(exc).__name__})"
        ) from exc
    if not done:
        message = f"the reply stream from {where} ended without [DONE]"
        if not parts:
            raise aiohttp.ClientPayloadError(message)
        raise ModelResponseError(f"{message} after {sum(map(len, parts))} characters")
    return _reply("".join(parts), model, usage, last_choice)


def _cut_stream(
    response: aiohttp.ClientResponse,
    parts: list[str],
    model: str,
    usage: Any,
    choice: dict[str, Any],
) -> ModelReply:
    """The reply of a stream that reached `max_reply_chars`: the rest is not read."""
    response.close()
    reply = _reply("".join(parts), model, usage, choice)
    tokens = reply.output_tokens or len(reply.text) // 4 + 1  # the usage chunk comes last
    return dataclasses.replace(reply, output_tokens=tokens, cut_at=len(reply.text))


async def _sse_lines(
    response: aiohttp.ClientResponse, max_bytes: int
) -> AsyncIterator[tuple[bytes, bool]]:
    """The lines of a server-sent-events body, each with True; a line longer than
    `max_bytes` ends the iteration as its first `max_bytes` bytes, with False.
    (aiohttp's own line reader raises on lines over 512 KiB, outside its error types.)"""
    buffer = bytearray()
    async for piece in response.content.iter_chunked(1 << 16):
        buffer += piece
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            yield bytes(buffer[start:end]), True
            start = end + 1
        del buffer[:start]
        if len(buffer) > max_bytes:
            yield bytes(buffer[:max_bytes]), False
            return
    if buffer:
        yield bytes(buffer), True


def _reply(text: str, model: str, usage: Any, choice: dict[str, Any]) -> ModelReply:
    return ModelReply(
        text=text,
        model=model,
        finish_reason=choice.get("finish_reason"),
        **token_counts(usage if isinstance(usage, dict) else None),
    )


_KEY_HINT = (
    "Set OPENAI_API_KEY (or RLM_LLM__API_KEY), or pass api_key=... "
    "(any non-empty value works for a server that needs no key)"
)
