"""Turning chat-completions objects (OpenAI SDK or LiteLLM) into a `ModelReply`.

Both libraries hand back objects of the same shape: `.choices[0].message.content`,
`.usage.prompt_tokens`, and stream chunks with `.choices[0].delta.content`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from rlmrt.errors import ModelResponseError
from rlmrt.llm._retry import library_errors
from rlmrt.llm._usage import token_counts
from rlmrt.llm.base import DeltaCallback, ModelReply


def reply_from_completion(response: Any, model: str) -> ModelReply:
    """A `ModelReply` from a non-streamed completion; token counts 0 when absent."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise ModelResponseError(f"the reply for model {model!r} has no choices")
    choice = choices[0]
    return _reply(choice.message.content or "", model, response.usage, choice.finish_reason)


async def collect_stream(
    chunks: AsyncIterable[Any],
    *,
    model: str,
    on_delta: DeltaCallback,
    where: str,
    close: Callable[[], Awaitable[Any]],
    limit: int,
) -> ModelReply:
    """Pass each text piece to `on_delta` and assemble the reply and its usage.

    A failure after text was handed out cannot be retried (the caller already
    showed it): it becomes a `ModelResponseError`. Before that, the library error
    propagates so the call can be retried. Reading stops after `limit` characters
    of text (`ModelReply.cut_at`).
    """
    parts: list[str] = []
    usage: Any = None
    finish: str | None = None
    size = 0
    try:
        async for chunk in chunks:
            usage = getattr(chunk, "usage", None) or usage
            for choice in chunk.choices[:1]:
                text = choice.delta.content
                if text:
                    text = text[: limit - size]
                    size += len(text)
                    parts.append(text)
                    on_delta(text)
                finish = choice.finish_reason or finish
            if size >= limit:
                reply = _reply("".join(parts), model, usage, finish)
                tokens = reply.output_tokens or size // 4 + 1  # the usage chunk comes last
                return dataclasses.replace(reply, output_tokens=tokens, cut_at=size)
    except library_errors() as exc:
        if not parts:
            raise
        raise ModelResponseError(
            f"the reply stream from {where} broke off after "
            f"{sum(map(len, parts))} characters ({type(exc).__name__})"
        ) from exc
    finally:
        await close()
    return _reply("".join(parts), model, usage, finish)


def cut_reply(reply: ModelReply, limit: int) -> ModelReply:
    """`reply` with its text cut to `limit` characters (`cut_at` set) when longer."""
    if len(reply.text) <= limit:
        return reply
    return dataclasses.replace(reply, text=reply.text[:limit], cut_at=limit)


def _reply(text: str, model: str, usage: Any, finish: str | None) -> ModelReply:
    return ModelReply(
        text=text,
        model=model,
        finish_reason=finish,
        **token_counts(usage),
    )
