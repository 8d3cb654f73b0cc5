"""Substring tests that also match longer values: the near-miss check of the small profile.

A small model counts lines with `"OPEN" in line` where the data also holds "REOPENED", or
`"WARN" in line` beside "WARNING": the count is wrong, the code ran without error, and no
other check sees it. When a block's string literal occurs in `context` both as a value of
its own and inside longer values, the model is shown those values and how many lines hold
them, so that it can decide whether they belong; nothing is changed or refused.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["NearMiss", "near_misses", "substring_literals"]

_MIN_LITERAL = 2
_MAX_LITERALS = 3  # per block
_MAX_OTHERS = 3  # longer values shown per literal
_CASE_FOLDS = (".lower()", ".upper()", ".casefold()")
_SUBSTRING_METHODS = frozenset(("count", "find", "index", "rfind"))


@dataclass(frozen=True, slots=True)
class NearMiss:
    """`literal` occurs alone on `exact_lines` lines and inside `others` (value -> lines
    holding it), in the order of how many lines hold them."""

    literal: str
    exact_lines: int
    others: tuple[tuple[str, int], ...]
    ignore_case: bool = False

    def whole_value_test(self) -> str:
        """A Python test of `line` that matches `literal` only where it stands alone,
        whatever separates the values (a regular expression: `re` must be imported)."""
        before = r"(?<![\w-])" if _is_glue(self.literal[0]) else ""
        after = r"(?![\w-])" if _is_glue(self.literal[-1]) else ""
        pattern = before + re.escape(self.literal) + after
        written = f'r"{pattern}"' if '"' not in pattern else repr(pattern)
        flags = ", re.IGNORECASE" if self.ignore_case else ""
        return f"re.search({written}, line{flags})"


def substring_literals(code: str) -> list[str]:
    """The string literals `code` tests for as parts of a text: `"X" in s`, `"X" not in s`,
    `s.count("X")`, `s.find("X")`. Code that does not parse has none."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        literal: ast.expr | None = None
        if isinstance(node, ast.Compare) and any(
            isinstance(op, (ast.In, ast.NotIn)) for op in node.ops
        ):
            literal = node.left
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _SUBSTRING_METHODS
            and node.args
        ):
            literal = node.args[0]
        if (
            isinstance(literal, ast.Constant)
            and isinstance(literal.value, str)
            and len(literal.value.strip()) >= _MIN_LITERAL
        ):
            found.append((literal.lineno, literal.col_offset, literal.value))
    in_order = list(dict.fromkeys(value for _, _, value in sorted(found)))
    return in_order[:_MAX_LITERALS]


def near_misses(code: str, text: str) -> list[NearMiss]:
    """The substring tests of `code` that match longer values of `text` too (see the
    module docs). Case is ignored when the code folds case (`.lower()`)."""
    fold = any(call in code for call in _CASE_FOLDS)
    found = []
    for literal in substring_literals(code):
        miss = _near_miss(literal, text, fold=fold)
        if miss is not None:
            found.append(miss)
    return found


def _near_miss(literal: str, text: str, *, fold: bool) -> NearMiss | None:
    """Counts the lines holding `literal` alone and the lines holding it inside each
    longer value (a value glued to it by letters, digits, "_" or "-")."""
    needle = literal.lower() if fold else literal
    glue_left, glue_right = _is_glue(literal[0]), _is_glue(literal[-1])
    exact_lines = 0
    other_lines: Counter[str] = Counter()
    for line in text.splitlines():
        searched = line.lower() if fold else line
        if needle not in searched:
            continue
        if len(searched) != len(line):  # a character whose lower case is longer
            line = searched
        values: set[str] = set()
        start = searched.find(needle)
        while start != -1:
            end = start + len(needle)
            left = _extend_left(searched, start) if glue_left else start
            right = _extend_right(searched, end) if glue_right else end
            values.add(line[left:right] if (left, right) != (start, end) else "")
            start = searched.find(needle, end)
        exact_lines += "" in values
        other_lines.update(values - {""})
    if not exact_lines or not other_lines:
        return None
    others = tuple(other_lines.most_common(_MAX_OTHERS))
    return NearMiss(literal=literal, exact_lines=exact_lines, others=others, ignore_case=fold)


def _is_glue(char: str) -> bool:
    return char.isalnum() or char in "_-"


def _extend_left(text: str, at: int) -> int:
    while at > 0 and _is_glue(text[at - 1]):
        at -= 1
    return at


def _extend_right(text: str, at: int) -> int:
    while at < len(text) and _is_glue(text[at]):
        at += 1
    return at
