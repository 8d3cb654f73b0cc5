"""What a small model has seen, and the answers that evidence supports.

The "small" prompt profile (`checked_final`) accepts an answer only when the model was
shown it whole: in an output of its code, but not echoed from a literal of that same
code (a 1.5B model told its FINAL was refused prints `"the code is 'safe.'"` and then
answers 'safe.'), or, for a value the model writes itself, in the lines the runtime
showed it at the start (`peek_lines`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from functools import cached_property

from rlmrt.engine.answers import says_nothing_found
from rlmrt.engine.parsing import literal_value
from rlmrt.sandbox.base import ExecResult

__all__ = ["ContextLines", "Evidence", "empty_result", "lines_holding", "peek_lines"]

POINTED_RUNS = 3  # a block run this many times with the same one-line output answers
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset((
    "the", "and", "what", "how", "many", "much", "with", "answer", "number", "whose",
    "which", "that", "this", "are", "is", "was", "for", "from", "have", "has", "had",
    "does", "did", "all", "any", "each", "its", "their", "there", "than", "then", "into",
    "only", "give", "write", "written", "tell", "find", "return", "value", "values", "text",
    "document", "context", "line", "lines", "please", "word", "words",
))  # fmt: skip
_PEEK_LINE_CHARS = 240
_LINE_NUMBER = re.compile(r"^(?:context\[\d+\] )?line \d+: ", re.MULTILINE)
# what a filter that matched nothing prints
_EMPTY_RESULTS = frozenset(("0", "0.0", "[]", "{}", "()", "set()", "None", "''", '""'))


class Evidence:
    """The outputs one run showed its model, and the answers they support."""

    def __init__(self) -> None:
        self._shown: list[tuple[str, str]] = []  # (code that printed it, what it printed)
        self._hints: list[str] = []  # lines the runtime showed (`peek_lines`)
        self._same_output: dict[str, tuple[str, int]] = {}  # code -> (stdout, runs in a row)
        # empty results (a count of 0) printed where the context holds lines about the
        # question: a value here is seen only once a second, different block printed it
        self._doubted: dict[str, set[str]] = {}

    def show(self, text: str, code: str = "") -> None:
        """The model was shown `text`, printed by `code` ("" for the runtime's own)."""
        self._shown.append((code, text))

    def hint(self, text: str) -> None:
        """The runtime showed `text` unasked: it backs a value the model writes itself,
        not one its code computed (`split()[-1]` of the right line is still a guess).
        The runtime's own "line N: " prefixes back nothing (a model answered 10 after
        seeing "line 10: ...")."""
        self._hints.append(_LINE_NUMBER.sub("", text))

    def doubt(self, value: str, code: str) -> None:
        """`code` printed `value`, an empty result, where the context holds lines about
        the question: `value` stays unseen until another block prints it too."""
        codes = self._doubted.setdefault(value.strip(), set())
        if literal_value(code) is None:  # a block that only holds the value confirms nothing
            codes.add(code.strip())

    def record(self, code: str, result: ExecResult) -> None:
        self.show(result.stdout + (result.error or ""), code)

    def doubted(self, value: str) -> bool:
        """Whether `value` is an empty result not yet confirmed by a second block."""
        return len(self._doubted.get(value.strip(), ())) == 1

    def was_seen(self, value: str, *, hints: bool = True) -> bool:
        """Whether `value` was shown as a whole (not as the start of "3591-JS"), by code
        that did not hold it as a literal, or (with `hints`) in the runtime's hints."""
        value = value.strip()
        if not value:
            return False
        if self.doubted(value):
            return False
        whole = re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")
        if hints and any(whole.search(text) for text in self._hints):
            return True
        return any(value not in code and whole.search(text) for code, text in self._shown)

    def whole_of(self, value: str) -> str | None:
        """The longer token `value` was shown only the start or end of ("3591-JS" for
        "3591"), when it was never shown whole."""
        value = value.strip()
        if not value or self.was_seen(value):
            return None
        v = re.escape(value)
        longer = re.compile(rf"(?<![\w-]){v}[\w-]+|[\w-]+{v}(?![\w-])")
        texts = [*self._hints, *(text for code, text in self._shown if value not in code)]
        for text in texts:
            match = longer.search(text)
            if match is not None:
                return match.group()
        return None

    def literal_answer(self, blocks: Sequence[str]) -> str | None:
        """A reply whose one block is only a literal the model saw printed (small models
        answer "```repl\\n138") is taken as its answer."""
        if len(blocks) != 1:
            return None
        value = literal_value(blocks[0])
        if value is None:
            return None
        return value if self.was_seen(value) else None

    def pointed_answer(self, code: str, result: ExecResult, blocks: int) -> str | None:
        """A block run a third time with the same one-line output (small models point at
        an answer they do not know how to give) is taken as the answer: that output."""
        key, output = code.strip(), result.stdout.strip()
        before, runs = self._same_output.get(key, ("", 0))
        runs = runs + 1 if before == output else 1
        self._same_output[key] = (output, runs)
        if blocks != 1 or result.error is not None:
            return None
        if runs < POINTED_RUNS or not output or "\n" in output or len(output) > 200:
            return None
        if self.doubted(output):  # a filter that found nothing, run again unchanged
            return None
        return output


def empty_result(result: ExecResult) -> str | None:
    """The output of a block that found nothing ("0", "[]", or a one-line message such as
    "Pattern not found"), or None."""
    output = result.stdout.strip()
    if result.error is not None:
        return None
    if output in _EMPTY_RESULTS or ("\n" not in output and says_nothing_found(output)):
        return output
    return None


class ContextLines:
    """The lines of a text context, or of a list of texts (a PDF's pages, a document's
    sections), under the labels the runtime shows them with: "line N" in a text,
    "context[i] line N" in item i of a list, so a shown line also tells the model where
    it is and what `context` is."""

    def __init__(self, parts: Sequence[str], *, listed: bool) -> None:
        self._parts = parts
        self._listed = listed

    @classmethod
    def of(cls, value: object) -> ContextLines | None:
        """The lines of `value`, when it is a text or a non-empty list of texts."""
        if isinstance(value, str):
            return cls([value], listed=False)
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return cls(value, listed=True)
        return None

    @cached_property
    def text(self) -> str:
        """The whole context as one text (the items joined by newlines)."""
        return self._parts[0] if not self._listed else "\n".join(self._parts)

    def numbered(self) -> Iterator[tuple[str, str]]:
        """(label, line) for every line, in order."""
        for index, part in enumerate(self._parts):
            prefix = f"context[{index}] " if self._listed else ""
            for number, line in enumerate(part.splitlines(), start=1):
                yield f"{prefix}line {number}", line


def peek_lines(question: str, lines: ContextLines, limit: int) -> list[str]:
    """Up to `limit` lines of the context that hold the most of the question's rarer
    words (each word weighted by how rare it is among the lines), as "line N: ..." in
    context order. A small model that sees a few relevant lines writes code for their
    real format, and can read a looked-up value, instead of guessing."""
    words = {w for w in _WORD.findall(question.lower()) if len(w) > 2 and w not in _STOP_WORDS}
    if not words or limit <= 0:
        return []
    present: list[tuple[int, str, str, frozenset[str]]] = []
    frequency = dict.fromkeys(words, 0)
    total = 0
    for label, line in lines.numbered():
        total += 1
        lowered = line.lower()
        found = frozenset(w for w in words if w in lowered)
        if found:
            present.append((total, label, line, found))
            for word in found:
                frequency[word] += 1
    weight = {w: math.log(total / n) for w, n in frequency.items() if n}
    scored = [(sum(weight[w] for w in found), order) for order, _, _, found in present]
    best = {
        order
        for _, order in sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:limit]
    }
    return [
        f"{label}: {_around_words(line, weight)}"
        for order, label, line, _ in present
        if order in best
    ]


def lines_holding(value: str, lines: ContextLines, limit: int) -> list[str]:
    """Up to `limit` lines of the context holding `value` as a whole token, as "line N: ..."."""
    value = value.strip()
    if not value:
        return []
    whole = re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])")
    shown = []
    for label, line in lines.numbered():
        match = whole.search(line)
        if match is not None:
            shown.append(f"{label}: {_around(line, match.start())}")
            if len(shown) == limit:
                break
    return shown


def _around_words(line: str, weight: dict[str, float]) -> str:
    """`line`, or the part of a long line around its rarest question word."""
    lowered = line.lower()
    rarest = max((w for w in weight if w in lowered), key=weight.__getitem__, default="")
    return _around(line, max(lowered.find(rarest), 0) if rarest else 0)


def _around(line: str, at: int) -> str:
    """`line`, or the part of a long line around position `at`."""
    if len(line.strip()) <= _PEEK_LINE_CHARS:
        return line.strip()
    start = max(0, min(at - _PEEK_LINE_CHARS // 2, len(line) - _PEEK_LINE_CHARS))
    part = line[start : start + _PEEK_LINE_CHARS]
    return ("..." if start else "") + part + ("..." if start + _PEEK_LINE_CHARS < len(line) else "")
