"""Token counts from a chat-completions `usage` block, whichever shape it came in.

The OpenAI SDK and LiteLLM hand back objects, our own client a parsed JSON dict; the
counts sit at the same names in both. Cache and reasoning counts follow OpenAI's
convention, which LiteLLM also normalizes Anthropic's usage to: tokens read from or
written to the provider's prompt cache are part of `prompt_tokens`, reasoning tokens
part of `completion_tokens`.
"""

from __future__ import annotations

from typing import Any, TypedDict


class TokenCounts(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


def token_counts(usage: Any) -> TokenCounts:
    """The counts in `usage` (a dict, an object or None); 0 for each one absent."""
    prompt = _field(usage, "prompt_tokens_details")
    completion = _field(usage, "completion_tokens_details")
    return TokenCounts(
        input_tokens=_count(usage, "prompt_tokens"),
        output_tokens=_count(usage, "completion_tokens"),
        # OpenAI: prompt_tokens_details.cached_tokens; Anthropic (LiteLLM passes both)
        cache_read_tokens=_count(prompt, "cached_tokens")
        or _count(usage, "cache_read_input_tokens"),
        cache_write_tokens=(
            _count(prompt, "cache_creation_tokens") or _count(usage, "cache_creation_input_tokens")
        ),
        reasoning_tokens=_count(completion, "reasoning_tokens"),
    )


def _field(source: Any, name: str) -> Any:
    if source is None:
        return None
    if isinstance(source, dict):
        return source.get(name)
    return getattr(source, name, None)


def _count(source: Any, name: str) -> int:
    value = _field(source, name)
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0  # a provider's odd value is no count, never a failed call
