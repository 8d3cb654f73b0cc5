"""Reading the root model's replies: code blocks and FINAL markers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

# ```repl, ```python, ```py and bare ``` fences all count (small models often write
# ```python, or a bare fence around FINAL(...)); other languages (```json...) do not.
_FENCE = re.compile(r"```[ \t]*(?:repl|python|py|python3)?[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL)
_ANY_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
# any case: a small model's closing "Final(0)" is its answer 0, not the text "Final(0)"
_FINAL_START = re.compile(r"^[ \t>*_#`-]*(FINAL_VAR|FINAL)\(", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FinalMarker:
    kind: Literal["FINAL", "FINAL_VAR"]
    argument: str


def find_code_blocks(text: str) -> list[str]:
    """The code of every ```repl / ```python block, in order (a last unclosed block counts)."""
    return [match.group(1).strip("\n") for match in _code_fences(text)]


def first_block_reply(text: str) -> str:
    """The reply up to the end of its first code block (all of it when it has none)."""
    first = next(_code_fences(text), None)
    return text if first is None else text[: first.end()]


def _code_fences(text: str) -> Iterator[re.Match[str]]:
    """The fenced blocks that hold code (an empty fence is not a block)."""
    return (match for match in _FENCE.finditer(text) if match.group(1).strip())


def literal_value(code: str) -> str | None:
    """The value of a block that is only a literal ("```repl\n138"), else None."""
    return _constant_text(_single_expression(code))


def is_final_call(code: str) -> bool:
    """Whether a block is only one `FINAL(...)` / `FINAL_VAR(...)` call, in any case."""
    call = _single_expression(code)
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id.upper() in ("FINAL", "FINAL_VAR")
    )


def final_call_value(code: str) -> str | None:
    """The value of a block that is only `FINAL(<literal>)`, in any case ("Final(1234)"),
    else None: what a best-effort reply means when it can no longer run code."""
    call = _single_expression(code)
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        return None
    if call.func.id.upper() != "FINAL" or len(call.args) != 1 or call.keywords:
        return None
    return _constant_text(call.args[0])


def _single_expression(code: str) -> ast.expr | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    return tree.body[0].value


def _constant_text(node: ast.expr | None) -> str | None:
    if not isinstance(node, ast.Constant) or isinstance(node.value, (bool, type(None))):
        return None
    return str(node.value)


def strip_code(text: str) -> str:
    """The reply without its fenced blocks."""
    return _ANY_FENCE.sub("", text)


def find_final(text: str) -> FinalMarker | None:
    """A FINAL(...) or FINAL_VAR(...) written as text, outside any fenced block."""
    prose = strip_code(text)
    match = _FINAL_START.search(prose)
    if match is None:
        return None
    kind: Literal["FINAL", "FINAL_VAR"] = (
        "FINAL_VAR" if match.group(1).upper() == "FINAL_VAR" else "FINAL"
    )
    inner = _balanced(prose, match.end())
    argument = _unquote(inner.strip())
    return FinalMarker(kind, argument)


def _balanced(text: str, start: int) -> str:
    """Text from `start` up to the parenthesis that closes the one before it."""
    depth = 1
    quote: str | None = None
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[start:index]
    # Unbalanced (an answer with a stray parenthesis or quote): up to the last ")".
    end = text.rfind(")", start)
    return text[start:end] if end != -1 else text[start:]


def _unquote(argument: str) -> str:
    if len(argument) >= 2 and argument[0] == argument[-1] and argument[0] in "\"'":
        try:
            value = ast.literal_eval(argument)
        except (ValueError, SyntaxError):
            return argument[1:-1]
        if isinstance(value, str):
            return value
    return argument
