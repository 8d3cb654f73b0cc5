"""The one async protocol every model client implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, TypedDict

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


class PartsMessage(TypedDict):
    """A message of content parts in OpenAI's chat format: ``{"type": "text", ...}``,
    ``{"type": "image_url", ...}``, ``{"type": "input_audio", ...}`` (`rlmrt.llm.media`)."""

    role: Role
    content: list[dict[str, Any]]


#: what a client sends: text messages, and content-part ones for images and recordings
ChatMessage = Message | PartsMessage


DeltaCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelReply:
    """A finished completion. Token counts come from the provider (0 when it gave none).

    Cache and reasoning counts are parts of the totals, as providers report them: tokens
    read from or written to the provider's prompt cache are counted in `input_tokens`,
    reasoning tokens in `output_tokens` (each priced at its own rate when known).

    `cut_at` is set when the reply was longer than the client's `max_reply_chars`: the
    client stopped reading there and `text` holds the first `cut_at` characters."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    finish_reason: str | None = None
    cut_at: int | None = None
    attempts: int = 1  # requests made for it, retries included


class ModelClient(ABC):
    """Base of every model client: one required method, `complete`.

    `model` selects a model other than the client's default for this call (the
    `model=` argument of `llm_query`). With `on_delta`, the client streams and calls
    it with each piece of text as it arrives; the reply is the same either way.
    Errors are raised as `rlmrt.errors.ModelError` subclasses, never returned as text.
    """

    def __init__(self, *, model: str) -> None:
        self.model = model

    @abstractmethod
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
        """Return the completion of `messages`; `temperature` and `seed` override the
        client's own for this call (the engine changes both to break a model's loop, and
        passes `seed` only then: a seeded server answers one prompt one way, however
        warm); `max_tokens` caps the reply's length (the engine passes it only when a
        budget caps it); `response_format` asks for JSON of a schema, in OpenAI's form
        (`rlmrt.llm.structured`; the engine passes it only for a typed sub-call)."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
