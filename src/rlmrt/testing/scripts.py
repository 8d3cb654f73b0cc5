"""What a scripted server receives and answers: `ChatRequest`, `Reply`, `ScriptedReplies`.

Plain data and a handler builder, kept apart from the HTTP machinery in
`rlmrt.testing.server` (which re-exports every name here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ChatRequest", "Fault", "Handler", "Reply", "ScriptedReplies", "scripted"]

Fault = Literal[None, "malformed_json", "drop_stream", "hang", "close"]


def _content_text(content: Any) -> str:
    """The text of a message's content (a string or a list of typed parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completions request as the server received it."""

    model: str
    messages: list[dict[str, Any]]
    stream: bool
    body: dict[str, Any]
    headers: dict[str, str]  # names in lower case

    @property
    def last_user_text(self) -> str:
        """The text of the last user message ("" when there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""

    @property
    def system_text(self) -> str:
        """The text of all system messages, joined by newlines."""
        return "\n".join(
            _content_text(m.get("content")) for m in self.messages if m.get("role") == "system"
        )

    @property
    def is_rlm_root(self) -> bool:
        """True for a root RLM call: its system prompt lists `FINAL_VAR(`."""
        return "FINAL_VAR(" in self.system_text

    def prompt_tokens_estimate(self) -> int:
        return sum(len(_content_text(m.get("content"))) for m in self.messages) // 4 + 1


@dataclass(frozen=True)
class Reply:
    """What the server answers. Token counts default to a deterministic estimate.

    `fault`: "hang" never answers (until the client gives up or the server stops),
    "drop_stream" sends part of the reply then closes the connection,
    "malformed_json" sends a 200 whose body is not valid JSON, "close" closes the
    connection without answering. `usage_details` is merged into the reply's usage block
    as a provider sends it, e.g. ``{"prompt_tokens_details": {"cached_tokens": 64}}``.
    """

    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    fault: Fault = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage_details: dict[str, Any] | None = None
    error_body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


Handler = Callable[[ChatRequest], "Reply | str"]


class ScriptedReplies:
    """A handler: root calls get `root` replies in order, sub-calls follow `sub`.

    `sub` is a function of the request, a list of replies used in order, or one
    reply used for every sub-call. Running out of replies is an error (HTTP 500
    naming what ran out), so a test that makes more calls than scripted fails loudly.
    """

    def __init__(
        self,
        root: Sequence[Reply | str] = (),
        sub: Handler | Sequence[Reply | str] | Reply | str | None = None,
    ) -> None:
        self._root = list(root)
        self._sub = sub
        self._lock = threading.Lock()
        self._root_used = 0
        self._sub_used = 0

    @property
    def root_remaining(self) -> int:
        with self._lock:
            return len(self._root) - self._root_used

    def __call__(self, request: ChatRequest) -> Reply | str:
        if request.is_rlm_root:
            with self._lock:
                if self._root_used >= len(self._root):
                    raise LookupError(
                        f"no scripted root reply left (all {len(self._root)} were used)"
                    )
                reply = self._root[self._root_used]
                self._root_used += 1
                return reply
        sub = self._sub
        if sub is None:
            raise LookupError("a sub-call arrived but no sub replies were scripted")
        if isinstance(sub, (str, Reply)):
            return sub
        if callable(sub):
            return sub(request)
        with self._lock:
            if self._sub_used >= len(sub):
                raise LookupError(f"no scripted sub reply left (all {len(sub)} were used)")
            reply = sub[self._sub_used]
            self._sub_used += 1
            return reply


def scripted(
    root: Sequence[Reply | str] = (),
    sub: Handler | Sequence[Reply | str] | Reply | str | None = None,
) -> ScriptedReplies:
    """Shorthand for `ScriptedReplies(root, sub)`."""
    return ScriptedReplies(root, sub)
