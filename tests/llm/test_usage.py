"""token_counts: the usage block of each provider shape, as dicts and as objects."""

from __future__ import annotations

from types import SimpleNamespace

from rlmrt.llm._usage import token_counts


def test_openai_shape_as_a_dict() -> None:
    usage = {
        "prompt_tokens": 900,
        "completion_tokens": 80,
        "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    assert token_counts(usage) == {
        "input_tokens": 900,
        "output_tokens": 80,
        "cache_read_tokens": 512,
        "cache_write_tokens": 0,
        "reasoning_tokens": 64,
    }


def test_anthropic_shape_as_litellm_passes_it() -> None:
    # LiteLLM's Usage object: prompt_tokens includes both cache counts, which it also
    # gives under Anthropic's names; details may be missing
    usage = SimpleNamespace(
        prompt_tokens=1200,
        completion_tokens=40,
        prompt_tokens_details=None,
        cache_read_input_tokens=1000,
        cache_creation_input_tokens=150,
    )
    counts = token_counts(usage)
    assert (counts["cache_read_tokens"], counts["cache_write_tokens"]) == (1000, 150)
    assert counts["reasoning_tokens"] == 0


def test_missing_or_odd_usage_counts_zero() -> None:
    assert set(token_counts(None).values()) == {0}
    odd = {"prompt_tokens": "many", "completion_tokens": -3, "prompt_tokens_details": []}
    assert set(token_counts(odd).values()) == {0}
