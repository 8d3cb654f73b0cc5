"""Cutting a text file into search chunks along its structure, with line provenance.

- Markdown: one chunk per heading section (headings inside ``` fences do not count).
- Python: one chunk per top-level `def`/`class` (decorators included); a class too
  big for one chunk gives a chunk for its header and one per method; module-level
  code between them is cut into blank-line blocks. When the file does not parse,
  it is treated as other code.
- Other code and prose: blank-line blocks (paragraphs), small neighbours merged.

Every chunk is at most `max_chars` characters (longer sections are cut at blank
lines, then at lines; one very long line is cut into pieces that share its line
number). Lines are 1-based and inclusive; a chunk's text is its lines joined by
newline, so line ranges and text stay in step.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

MAX_CHARS = 1500

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    start_line: int
    end_line: int
    title: str
    text: str


def chunk_text(name: str, text: str, *, max_chars: int = MAX_CHARS) -> list[Chunk]:
    """Chunks of one file; `name` (a path or file name) picks the rules by suffix."""
    lines = text.splitlines()
    suffix = name[name.rfind(".") :].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if suffix in MARKDOWN_SUFFIXES:
        chunks = _markdown(lines, max_chars)
    elif suffix in (".py", ".pyi"):
        chunks = _python(text, lines, max_chars)
    else:
        chunks = _blocks(lines, 1, len(lines), max_chars)
    return [c for c in chunks if c.text.strip()]


def _first_line(lines: list[str], start: int, end: int) -> str:
    for line in lines[start - 1 : end]:
        if line.strip():
            return line.strip()[:80]
    return ""


def _make(lines: list[str], start: int, end: int, title: str | None, max_chars: int) -> list[Chunk]:
    """One chunk for lines start..end, or several when it is too long."""
    while start <= end and not lines[start - 1].strip():
        start += 1
    while end >= start and not lines[end - 1].strip():
        end -= 1
    if start > end:
        return []
    body = "\n".join(lines[start - 1 : end])
    name = title if title is not None else _first_line(lines, start, end)
    if len(body) <= max_chars:
        return [Chunk(start, end, name, body)]
    # Too long: cut at blank lines, then at lines; pieces keep the section's title.
    return [Chunk(s, e, name, t) for s, e, t in _split(lines, start, end, max_chars)]


def _split(lines: list[str], start: int, end: int, max_chars: int) -> list[tuple[int, int, str]]:
    pieces: list[tuple[int, int, str]] = []
    cur_start = start
    size = 0
    last_blank: int | None = None
    lineno = start
    while lineno <= end:
        line = lines[lineno - 1]
        if len(line) > max_chars:
            if cur_start < lineno:
                pieces.append(_piece(lines, cur_start, lineno - 1))
            pieces.extend(
                (lineno, lineno, line[i : i + max_chars]) for i in range(0, len(line), max_chars)
            )
            cur_start, size, last_blank = lineno + 1, 0, None
            lineno += 1
            continue
        added = len(line) + (1 if lineno > cur_start else 0)
        if size + added > max_chars and lineno > cur_start:
            cut = last_blank if last_blank is not None and last_blank > cur_start else lineno - 1
            pieces.append(_piece(lines, cur_start, cut))
            cur_start, size, last_blank = cut + 1, 0, None
            lineno = cur_start
            continue
        size += added
        if not line.strip():
            last_blank = lineno
        lineno += 1
    if cur_start <= end:
        pieces.append(_piece(lines, cur_start, end))
    return [p for p in pieces if p[2].strip()]


def _piece(lines: list[str], start: int, end: int) -> tuple[int, int, str]:
    while start < end and not lines[start - 1].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return (start, end, "\n".join(lines[start - 1 : end]))


def _blocks(lines: list[str], start: int, end: int, max_chars: int) -> list[Chunk]:
    """Blank-line blocks of lines start..end, neighbours merged up to max_chars."""
    spans: list[tuple[int, int]] = []
    block_start: int | None = None
    for lineno in range(start, end + 1):
        if lines[lineno - 1].strip():
            if block_start is None:
                block_start = lineno
        elif block_start is not None:
            spans.append((block_start, lineno - 1))
            block_start = None
    if block_start is not None:
        spans.append((block_start, end))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged:
            ms, _ = merged[-1]
            if sum(len(x) + 1 for x in lines[ms - 1 : e]) <= max_chars:
                merged[-1] = (ms, e)
                continue
        merged.append((s, e))
    out: list[Chunk] = []
    for s, e in merged:
        out.extend(_make(lines, s, e, None, max_chars))
    return out


def _markdown(lines: list[str], max_chars: int) -> list[Chunk]:
    starts: list[tuple[int, str]] = []
    in_fence = False
    for lineno, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            match = _HEADING.match(line)
            if match:
                starts.append((lineno, match.group(2)))
    out: list[Chunk] = []
    if not starts or starts[0][0] > 1:
        first = starts[0][0] - 1 if starts else len(lines)
        out.extend(_blocks(lines, 1, first, max_chars))
    for i, (lineno, title) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines)
        out.extend(_make(lines, lineno, end, title, max_chars))
    return out


def _span(node: ast.stmt) -> tuple[int, int]:
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *(d.lineno for d in decorators)])
    return start, node.end_lineno or node.lineno


def _python(text: str, lines: list[str], max_chars: int) -> list[Chunk]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return _blocks(lines, 1, len(lines), max_chars)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    out: list[Chunk] = []
    cursor = 1
    for node in tree.body:
        if not isinstance(node, defs):
            continue
        start, end = _span(node)
        if cursor < start:
            out.extend(_blocks(lines, cursor, start - 1, max_chars))
        out.extend(_definition(node, lines, start, end, "", max_chars))
        cursor = end + 1
    if cursor <= len(lines):
        out.extend(_blocks(lines, cursor, len(lines), max_chars))
    return out


def _definition(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
    lines: list[str],
    start: int,
    end: int,
    prefix: str,
    max_chars: int,
) -> list[Chunk]:
    kind = "class" if isinstance(node, ast.ClassDef) else "def"
    title = f"{kind} {prefix}{node.name}"
    size = sum(len(x) + 1 for x in lines[start - 1 : end])
    methods = [
        n
        for n in getattr(node, "body", [])
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    if not isinstance(node, ast.ClassDef) or size <= max_chars or not methods:
        return _make(lines, start, end, title, max_chars)
    out: list[Chunk] = []
    cursor = start
    for child in methods:
        c_start, c_end = _span(child)
        if cursor < c_start:
            out.extend(_make(lines, cursor, c_start - 1, title, max_chars))
        out.extend(_definition(child, lines, c_start, c_end, f"{prefix}{node.name}.", max_chars))
        cursor = c_end + 1
    if cursor <= end:
        out.extend(_make(lines, cursor, end, title, max_chars))
    return out
