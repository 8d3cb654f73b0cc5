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

__all__ = ["NearMiss", "longer_value", "near_misses", "substring_literals", "whole_value_variant"]

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

    def pattern(self) -> str:
        """A regular expression matching `literal` only where it stands alone, whatever
        separates the values."""
        before = r"(?<![\w-])" if _is_glue(self.literal[0]) else ""
        after = r"(?![\w-])" if _is_glue(self.literal[-1]) else ""
        return before + re.escape(self.literal) + after

    def whole_value_test(self) -> str:
        """A Python test of `line` that matches `literal` only where it stands alone
        (`re` must be imported)."""
        pattern = self.pattern()
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


def longer_value(value: str, text: str) -> str | None:
    """The value of `text` that `value` is only a part of ("meadow-9328" for "meadow"),
    when `value` never stands alone in `text`; else None. Numbers are left alone: a
    computed count need not occur in the text, and "73" inside "1973" says nothing."""
    value = value.strip()
    if not any(char.isalpha() for char in value):
        return None
    if not (_is_glue(value[0]) or _is_glue(value[-1])):
        return None
    first: str | None = None
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        left = _extend_left(text, start) if _is_glue(value[0]) else start
        right = _extend_right(text, end) if _is_glue(value[-1]) else end
        if (left, right) == (start, end):
            return None  # it stands alone somewhere
        first = first or text[left:right]
        start = text.find(value, end)
    return first


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


# Calls a variant must not repeat: model calls cost, FINAL ends the run.
_SIDE_EFFECT_CALLS = frozenset(
    (
        "llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched", "context_search",
        "FINAL", "FINAL_VAR", "SHOW_VARS", "open", "exec", "eval", "input",
    )
)  # fmt: skip
VARIANT_FUNCTION = "rlm_whole_value_check"
_RE_NAME = "rlm_whole_re"


def whole_value_variant(code: str, misses: list[NearMiss]) -> str | None:
    """`code` with each noted substring test made a whole-value test (`"WARN" in line`
    -> a regular-expression search for WARN standing alone; `s.count("WARN")` -> the
    number of such matches), run inside a function so that it leaves the REPL's variables
    as they were. None when nothing could be rewritten, or when the code calls something
    a second run must not (a model, FINAL, files)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _SIDE_EFFECT_CALLS
        ):
            return None
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.Yield, ast.YieldFrom, ast.Await)):
            return None
    patterns = {miss.literal: miss for miss in misses}
    rewriter = _WholeValues(patterns)
    body = [rewriter.visit(statement) for statement in tree.body]
    if not rewriter.changed or not body:
        return None
    last = body[-1]
    if isinstance(last, ast.Expr) and not _is_print(last.value):
        body[-1] = ast.Expr(_call_name("print", [last.value]))  # what the REPL displayed
    module = ast.parse(
        f"def {VARIANT_FUNCTION}():\n"
        f"    import re as {_RE_NAME}\n"
        f"{VARIANT_FUNCTION}()\n"
        f"del {VARIANT_FUNCTION}\n"
    )
    function = module.body[0]
    assert isinstance(function, ast.FunctionDef)
    function.body.extend(body)
    return ast.unparse(ast.fix_missing_locations(module))


class _WholeValues(ast.NodeTransformer):
    def __init__(self, misses: dict[str, NearMiss]) -> None:
        self.misses = misses
        self.changed = False

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return node
        miss = self._miss(node.left)
        if miss is None:
            return node
        self.changed = True
        found = ast.Compare(
            left=self._search("search", miss, node.comparators[0]),
            ops=[ast.IsNot() if isinstance(node.ops[0], ast.In) else ast.Is()],
            comparators=[ast.Constant(None)],
        )
        return found

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if not (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "count"
            and len(node.args) == 1
            and not node.keywords
        ):
            return node
        miss = self._miss(node.args[0])
        if miss is None:
            return node
        self.changed = True
        return _call_name("len", [self._search("findall", miss, node.func.value)])

    def _miss(self, node: ast.expr) -> NearMiss | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self.misses.get(node.value)
        return None

    @staticmethod
    def _search(function: str, miss: NearMiss, text: ast.expr) -> ast.Call:
        args: list[ast.expr] = [ast.Constant(miss.pattern()), text]
        if miss.ignore_case:
            args.append(
                ast.Attribute(value=ast.Name(id=_RE_NAME, ctx=ast.Load()), attr="IGNORECASE")
            )
        return ast.Call(
            func=ast.Attribute(value=ast.Name(id=_RE_NAME, ctx=ast.Load()), attr=function),
            args=args,
            keywords=[],
        )


def _call_name(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[])


def _is_print(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    )
