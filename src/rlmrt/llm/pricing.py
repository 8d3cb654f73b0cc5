"""What a model call cost, in USD: custom prices first, else LiteLLM's bundled map.

The bundled map is the JSON file shipped inside the `litellm` package, read once
(about 40 ms) without importing LiteLLM itself (seconds) and never fetched from the
network. When LiteLLM is already imported, its live `litellm.model_cost` is used
instead (it also holds models registered with `litellm.register_model`).
An unknown model costs 0.0 and is reported as unknown, never as an error.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmrt.config import ModelPrice

_BUNDLED_MAP = "model_prices_and_context_window_backup.json"
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def cost_usd(
    model: str,
    input_tokens: int,
    output_tokens: int,
    prices: Mapping[str, ModelPrice],
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> tuple[float, bool]:
    """Return (cost in USD, whether the model's price is known).

    Cache and reasoning tokens are parts of `input_tokens` and `output_tokens` (see
    `ModelReply`); each part is priced at its own rate where the price has one, else at
    the input or output rate. `prices` (USD per million tokens) is looked up by the full
    id, then by the name after the provider prefix ("openai/gpt-4o-mini" -> "gpt-4o-mini").
    """
    cached = min(input_tokens, cache_read_tokens + cache_write_tokens)
    read = min(cache_read_tokens, cached)
    tokens = _Tokens(
        fresh_input=input_tokens - cached,
        cache_read=read,
        cache_write=cached - read,
        answer=output_tokens - min(output_tokens, reasoning_tokens),
        reasoning=min(output_tokens, reasoning_tokens),
        prompt=input_tokens,
    )
    _, _, bare = model.partition("/")
    custom = prices.get(model) or (prices.get(bare) if bare else None)
    if custom is not None:
        return tokens.cost(_custom_rates(custom)) / 1_000_000, True
    entry = _lookup(model, _price_map())
    if entry is None:
        return 0.0, False
    return tokens.cost(_entry_rates(entry, input_tokens)), True


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token (or per million tokens, for custom prices) of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float


@dataclass(frozen=True, slots=True)
class _Tokens:
    fresh_input: int
    cache_read: int
    cache_write: int
    answer: int
    reasoning: int
    prompt: int

    def cost(self, rates: _Rates) -> float:
        return (
            self.fresh_input * rates.input
            + self.cache_read * rates.cache_read
            + self.cache_write * rates.cache_write
            + self.answer * rates.output
            + self.reasoning * rates.reasoning
        )


def _custom_rates(price: ModelPrice) -> _Rates:
    def _or(value: float | None, default: float) -> float:
        return default if value is None else value

    return _Rates(
        input=price.input_per_mtok,
        output=price.output_per_mtok,
        cache_read=_or(price.cache_read_per_mtok, price.input_per_mtok),
        cache_write=_or(price.cache_write_per_mtok, price.input_per_mtok),
        reasoning=price.output_per_mtok,
    )


def _lookup(model: str, table: Mapping[str, Any]) -> Mapping[str, Any] | None:
    entry = table.get(model)
    provider, sep, bare = model.partition("/")
    if entry is None and sep:
        # LiteLLM keys OpenAI and Anthropic models without the provider prefix.
        candidate = table.get(bare)
        if isinstance(candidate, Mapping) and candidate.get("litellm_provider") == provider:
            entry = candidate
    if not isinstance(entry, Mapping) or not isinstance(entry.get("input_cost_per_token"), float):
        return None
    return entry


def _entry_rates(entry: Mapping[str, Any], prompt_tokens: int) -> _Rates:
    """The rates of a LiteLLM price entry for a prompt of `prompt_tokens`.

    Long prompts cost more on some models ("..._above_200k_tokens"): the highest tier
    the prompt exceeds prices the whole call, as LiteLLM does; each kind keeps its base
    rate when the tier does not name it."""
    tier = ""
    for threshold, suffix in sorted(
        (int(match.group(1)) * 1000, match.group(0)[len("input_cost_per_token") :])
        for key in entry
        if (match := _TIER.match(key)) is not None
    ):
        if prompt_tokens > threshold:
            tier = suffix

    def rate(key: str, default: float) -> float:
        for name in (key + tier, key):
            value = entry.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return default

    input_rate = rate("input_cost_per_token", 0.0)
    output_rate = rate("output_cost_per_token", 0.0)
    return _Rates(
        input=input_rate,
        output=output_rate,
        cache_read=rate("cache_read_input_token_cost", input_rate),
        cache_write=rate("cache_creation_input_token_cost", input_rate),
        reasoning=rate("output_cost_per_reasoning_token", output_rate),
    )


def _price_map() -> Mapping[str, Any]:
    litellm = sys.modules.get("litellm")
    model_cost = getattr(litellm, "model_cost", None)
    if isinstance(model_cost, Mapping):
        return model_cost
    return _bundled_map()


@functools.cache
def _bundled_map() -> Mapping[str, Any]:
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / _BUNDLED_MAP
        if path.is_file():
            data = json.loads(path.read_bytes())
            if isinstance(data, dict):
                return data
    # A LiteLLM release that moved the file: ask LiteLLM itself (offline, see _litellm).
    from rlmrt.llm._litellm import import_litellm

    model_cost: Mapping[str, Any] = import_litellm().model_cost
    return model_cost
