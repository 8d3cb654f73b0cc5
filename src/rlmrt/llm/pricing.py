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
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlmrt.config import ModelPrice

_BUNDLED_MAP = "model_prices_and_context_window_backup.json"
_TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, ModelPrice]
) -> tuple[float, bool]:
    """Return (cost in USD, whether the model's price is known).

    `prices` (USD per million tokens) is looked up by the full id, then by the name
    after the provider prefix ("openai/gpt-4o-mini" -> "gpt-4o-mini").
    """
    _, _, bare = model.partition("/")
    custom = prices.get(model) or (prices.get(bare) if bare else None)
    if custom is not None:
        cost = input_tokens * custom.input_per_mtok + output_tokens * custom.output_per_mtok
        return cost / 1_000_000, True
    entry = _lookup(model, _price_map())
    if entry is None:
        return 0.0, False
    return _entry_cost(entry, input_tokens, output_tokens), True


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


def _entry_cost(entry: Mapping[str, Any], input_tokens: int, output_tokens: int) -> float:
    input_rate = float(entry["input_cost_per_token"])
    output_rate = float(entry.get("output_cost_per_token") or 0.0)
    # Long prompts cost more on some models ("..._above_200k_tokens"): the highest
    # tier the prompt exceeds prices the whole call, as LiteLLM does.
    tiers = sorted(
        (int(match.group(1)) * 1000, key)
        for key in entry
        if (match := _TIER.match(key)) is not None
    )
    for threshold, key in tiers:
        if input_tokens > threshold:
            input_rate = float(entry[key])
            output_key = key.replace("input_", "output_", 1)
            output_rate = float(entry.get(output_key, output_rate))
    return input_tokens * input_rate + output_tokens * output_rate


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
