"""Turning what the user passes as `context` into a value for the sandbox, plus the
metadata the root model sees instead of the context itself."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.errors import ContextError

PREVIEW_CHARS = 400
LISTED_ITEMS = 20
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"})

ContextValue = str | bytes | list[str] | dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class LoadedContext:
    value: ContextValue
    metadata: dict[str, Any]


def load_context(context: Any) -> LoadedContext:
    """Accepts str, bytes, a list of str, a dict, a Path, or a list of Paths."""
    value = _to_value(context)
    return LoadedContext(value, describe(value))


def _to_value(context: Any) -> ContextValue:
    if context is None or isinstance(context, (str, dict)):
        return context
    if isinstance(context, (bytes, bytearray)):
        try:
            return bytes(context).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(context)
    if isinstance(context, os.PathLike):
        return _read_path(Path(context))
    if isinstance(context, Sequence) and not isinstance(context, str):
        items = list(context)
        if all(isinstance(item, str) for item in items):
            return items
        if items and all(isinstance(item, os.PathLike) for item in items):
            merged: dict[str, Any] = {}
            for item in items:
                loaded = _read_path(Path(item))
                if isinstance(loaded, dict):
                    merged.update(loaded)
                else:
                    merged[str(item)] = loaded
            return merged
        kinds = sorted({type(item).__name__ for item in items})
        raise ContextError(
            f"a context list must hold only str or only paths, got: {', '.join(kinds)}"
        )
    raise ContextError(
        f"unsupported context type {type(context).__name__}: "
        "use str, bytes, a list of str, a dict, a Path or a list of Paths"
    )


def _read_path(path: Path) -> str | dict[str, Any]:
    if not path.exists():
        raise ContextError(f"context path does not exist: {path}")
    if path.is_dir():
        files: dict[str, Any] = {}
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(names):
                file = Path(root) / name
                files[str(file.relative_to(path))] = _read_file(file, binary_ok=True)
        if not files:
            raise ContextError(f"context folder has no files: {path}")
        return files
    text = _read_file(path, binary_ok=False)
    assert isinstance(text, str)
    return text


def _read_file(path: Path, *, binary_ok: bool) -> str | bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContextError(f"cannot read context file {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if binary_ok:
            return data  # a binary file in a folder stays available, as bytes
        raise ContextError(f"context file is not UTF-8 text: {path}") from exc


def _length(item: Any) -> int:
    return len(item) if isinstance(item, (str, bytes, list, dict)) else len(repr(item))


def describe(value: ContextValue) -> dict[str, Any]:
    """Type, total length, per-item lengths and a short preview: never the whole thing."""
    if value is None:
        return {"type": "none", "total_length": 0}
    meta: dict[str, Any] = {"type": type(value).__name__}
    if isinstance(value, (str, bytes)):
        meta["total_length"] = len(value)
        meta["preview"] = _preview(value)
    elif isinstance(value, list):
        lengths = [len(item) for item in value]
        meta.update(
            items=len(value),
            total_length=sum(lengths),
            item_lengths=lengths[:LISTED_ITEMS],
            preview=_preview(value[0]) if value else "",
        )
    else:
        lengths_by_key = {str(key): _length(item) for key, item in value.items()}
        meta.update(
            items=len(value),
            total_length=sum(lengths_by_key.values()),
            item_lengths=dict(list(lengths_by_key.items())[:LISTED_ITEMS]),
            preview=_preview(next(iter(value.values()), "")),
        )
    if meta.get("items", 0) > LISTED_ITEMS:
        meta["items_not_listed"] = meta["items"] - LISTED_ITEMS
    return meta


def _preview(item: Any) -> str:
    if isinstance(item, bytes):
        return repr(item[:PREVIEW_CHARS])
    text = item if isinstance(item, str) else repr(item)
    return text[:PREVIEW_CHARS]


def describe_for_prompt(meta: Mapping[str, Any]) -> str:
    lines = [f"Type: {meta['type']}", f"Total length: {meta['total_length']:,} characters"]
    if "items" in meta:
        lines.append(f"Items: {meta['items']:,}")
        lines.append(f"Item lengths: {meta['item_lengths']}")
        if "items_not_listed" in meta:
            lines.append(f"(lengths of {meta['items_not_listed']:,} more items not listed)")
    if meta.get("preview"):
        lines.append(f"Preview (first {PREVIEW_CHARS} characters):\n{meta['preview']}")
    return "\n".join(lines)
