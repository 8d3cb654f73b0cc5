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
    ("model", "tokens_in", "tokens_out", "cache_read"),
    [
        ("openai/gpt-4o-mini", 1234, 567, 0),
        ("openai/gpt-4o-mini", 1234, 567, 1024),
        ("claude-sonnet-4-5", 1000, 2000, 0),
        ("claude-sonnet-4-5", 5000, 2000, 4000),
        ("gemini/gemini-2.5-pro", 250_000, 1000, 0),
        ("gemini/gemini-2.5-pro", 250_000, 1000, 200_000),
    ],
)
def test_agrees_with_litellm(
    model: str, tokens_in: int, tokens_out: int, cache_read: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlmrt.llm._litellm import import_litellm

    expected = sum(
        import_litellm().cost_per_token(
            model=model,
            prompt_tokens=tokens_in,
            completion_tokens=tokens_out,
            cache_read_input_tokens=cache_read,
        )
    )
    ours = cost_usd(model, tokens_in, tokens_out, {}, cache_read_tokens=cache_read)
    assert ours == (pytest.approx(expected), True)
    # the same from the bundled file alone, as when LiteLLM is not imported
    monkeypatch.setattr(pricing, "_price_map", pricing._bundled_map)
    ours = cost_usd(model, tokens_in, tokens_out, {}, cache_read_tokens=cache_read)
    assert ours == (pytest.approx(expected), True)


def test_pricing_does_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from rlmrt.llm.pricing import cost_usd\n"
        "assert cost_usd('openai/gpt-4o-mini', 10, 10, {})[1]\n"
        "assert 'litellm' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)


def test_cache_reads_and_writes_are_priced_at_their_own_rates() -> None:
    # claude-sonnet-4-5 in LiteLLM's map: input 3e-6, cache read 3e-7, cache write
    # 3.75e-6, output 1.5e-5 (USD per token). Cache tokens are parts of the input.
    cost, known = cost_usd(
        "anthropic/claude-sonnet-4-5",
        10_000,
        1_000,
        {},
        cache_read_tokens=6_000,
        cache_write_tokens=3_000,
    )
    assert known
    assert cost == pytest.approx(1_000 * 3e-6 + 6_000 * 3e-7 + 3_000 * 3.75e-6 + 1_000 * 1.5e-5)
    uncached, _ = cost_usd("anthropic/claude-sonnet-4-5", 10_000, 1_000, {})
    assert uncached == pytest.approx(10_000 * 3e-6 + 1_000 * 1.5e-5)


def test_a_model_without_a_cache_rate_prices_cache_tokens_as_input() -> None:
    # o3-mini has a cache-read rate but no cache-write one; reasoning is output
    cost, _ = cost_usd(
        "openai/o3-mini",
        2_000,
        500,
        {},
        cache_read_tokens=1_000,
        cache_write_tokens=500,
        reasoning_tokens=400,
    )
    assert cost == pytest.approx(500 * 1.1e-6 + 1_000 * 5.5e-7 + 500 * 1.1e-6 + 500 * 4.4e-6)


def test_the_long_prompt_tier_has_its_own_cache_rate() -> None:
    cost, _ = cost_usd("gemini/gemini-2.5-pro", 300_000, 0, {}, cache_read_tokens=100_000)
    assert cost == pytest.approx(200_000 * 2.5e-6 + 100_000 * 2.5e-7)


def test_custom_cache_prices_default_to_the_input_price() -> None:
    plain = {"my-model": ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0)}
    cached = {
        "my-model": ModelPrice(
            input_per_mtok=2.0,
            output_per_mtok=8.0,
            cache_read_per_mtok=0.5,
            cache_write_per_mtok=4.0,
        )
    }
    parts = {"cache_read_tokens": MILLION // 2, "cache_write_tokens": MILLION // 4}
    assert cost_usd("my-model", MILLION, 0, plain, **parts) == (2.0, True)
    assert cost_usd("my-model", MILLION, 0, cached, **parts) == (
        pytest.approx(0.25 * 2.0 + 0.5 * 0.5 + 0.25 * 4.0),
        True,
    )


def test_counts_a_provider_reports_out_of_range_are_clamped() -> None:
    # more cached than prompt tokens (a provider's odd report) never costs less than zero
    cost, _ = cost_usd(
        "openai/gpt-4o-mini", 100, 10, {}, cache_read_tokens=500, reasoning_tokens=50
    )
    assert cost == pytest.approx(100 * 7.5e-8 + 10 * 6e-7)
