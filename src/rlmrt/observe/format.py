"""Small text formatters shared by every view of a run (numbers, durations, previews)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tokens(count: int) -> str:
    return f"{count:,} tok"


def cost(usd: float) -> str:
    if usd == 0:
        return "$0"
    if usd < 0.01:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def preview(text: str | None, limit: int = 60) -> str:
    """One line of at most `limit` characters (whitespace runs folded)."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def context(meta: Mapping[str, Any]) -> str:
    """ "str, 1,234 chars" from a run's context metadata."""
    kind = meta.get("type", "?")
    if kind == "none":
        return "no context"
    return f"{kind}, {meta.get('total_length', 0):,} chars"
