"""cost_usd: custom prices, LiteLLM's bundled map (offline), unknown models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlmrt.config import ModelPrice
from rlmrt.llm import pricing
from rlmrt.llm.pricing import cost_usd

MILLION = 1_000_000


@pytest.mark.parametrize("model", ["gpt-4o-mini", "openai/gpt-4o-mini"])
def test_known_model_from_the_bundled_map(model: str) -> None:
    cost, known = cost_usd(model, MILLION, MILLION, {})
    assert known
    assert cost == pytest.approx(0.15 + 0.60)


def test_other_providers_are_priced() -> None:
    cost, known = cost_usd("anthropic/claude-sonnet-4-5", 1000, 1000, {})
    assert known
    assert cost > 0


def test_zero_tokens_cost_nothing_but_are_known() -> None:
    assert cost_usd("openai/gpt-4o-mini", 0, 0, {}) == (0.0, True)


def test_custom_price_wins() -> None:
    prices = {"openai/gpt-4o-mini": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)}
    assert cost_usd("openai/gpt-4o-mini", MILLION, MILLION // 2, prices) == (2.0, True)


def test_custom_price_by_bare_name_and_for_unknown_models() -> None:
    prices = {
        "gpt-4o-mini": ModelPrice(input_per_mtok=10.0, output_per_mtok=0.0),
        "my-local-model": ModelPrice(input_per_mtok=0.5, output_per_mtok=0.5),
    }
    assert cost_usd("openai/gpt-4o-mini", MILLION, MILLION, prices) == (10.0, True)
    assert cost_usd("openai/my-local-model", MILLION, MILLION, prices) == (1.0, True)


@pytest.mark.parametrize(
    "model",
    ["no-such-model-xyz", "openai/my-local-model", "anthropic/gpt-4o-mini", "hosted_vllm/x"],
)
def test_unknown_model_costs_nothing(model: str) -> None:
    assert cost_usd(model, 1000, 1000, {}) == (0.0, False)


def test_long_prompts_use_the_higher_tier() -> None:
    short, _ = cost_usd("gemini/gemini-2.5-pro", 100_000, 0, {})
    long, _ = cost_usd("gemini/gemini-2.5-pro", 300_000, 0, {})
    assert short == pytest.approx(100_000 * 1.25e-06)
    assert long == pytest.approx(300_000 * 2.5e-06)


@pytest.mark.parametrize(
    ("model", "tokens_in", "tokens_out"),
    [
        ("openai/gpt-4o-mini", 1234, 567),
        ("claude-sonnet-4-5", 1000, 2000),
        ("gemini/gemini-2.5-pro", 250_000, 1000),
    ],
)
def test_agrees_with_litellm(model: str, tokens_in: int, tokens_out: int) -> None:
    from rlmrt.llm._litellm import import_litellm

    expected = sum(
        import_litellm().cost_per_token(
            model=model, prompt_tokens=tokens_in, completion_tokens=tokens_out
        )
    )
    assert cost_usd(model, tokens_in, tokens_out, {}) == (pytest.approx(expected), True)
    entry = pricing._lookup(model, pricing._bundled_map())  # the file, not litellm.model_cost
    assert entry is not None
    assert pricing._entry_cost(entry, tokens_in, tokens_out) == pytest.approx(expected)


def test_pricing_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from rlmrt.llm.pricing import cost_usd\n"
        "assert cost_usd('openai/gpt-4o-mini', 10, 10, {})[1]\n"
        "assert 'litellm' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
