"""The environment variables that hold each provider's API key (names only)."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["PROVIDER_KEYS", "keys_present"]

PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "vertex_ai": ("GOOGLE_APPLICATION_CREDENTIALS",),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "cohere": ("COHERE_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "fireworks_ai": ("FIREWORKS_API_KEY",),
    "azure": ("AZURE_API_KEY",),
}


def keys_present(env: Mapping[str, str] | None = None) -> list[str]:
    """The names of the provider key variables set (non-empty) in `env`, sorted."""
    env = os.environ if env is None else env
    return sorted({name for names in PROVIDER_KEYS.values() for name in names if env.get(name)})
