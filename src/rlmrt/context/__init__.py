"""Context providers: find the parts of a large corpus that matter, within a token budget.

`PROVIDERS` maps a short name to a provider class ("local": an SQLite FTS5 index of a
project folder; "snipara": Snipara's hosted API). Provider modules are imported on
first use.
"""

from __future__ import annotations

from rlmrt.context.base import PROVIDERS, ContextHit, ContextProvider, estimate_tokens

__all__ = ["PROVIDERS", "ContextHit", "ContextProvider", "estimate_tokens"]
