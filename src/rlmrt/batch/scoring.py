"""Whether an answer is the expected one."""

from __future__ import annotations

import re
from typing import Literal

Match = Literal["exact", "contains"]

_THOUSANDS = re.compile(r"(?<=\d)[,_](?=\d{3})")


def is_right(answer: str | None, expected: str, match: Match = "exact") -> bool:
    """`exact`: the same text once case, surrounding space and quotes, digit grouping
    and a trailing period are set aside, or the same number ("138" and "138.0");
    `contains`: `expected` appears in the answer as a whole token."""
    if not answer:
        return False
    if match == "contains":
        text = _THOUSANDS.sub("", answer)
        return re.search(rf"(?<![\w-]){re.escape(expected)}(?![\w-]|\.\d)", text) is not None
    left, right = _normal(answer), _normal(expected)
    if left == right:
        return True
    try:
        return float(left) == float(right)
    except ValueError:
        return False


def _normal(text: str) -> str:
    text = _THOUSANDS.sub("", text.strip().strip("\"'`").strip())
    return text.removesuffix(".").casefold()
