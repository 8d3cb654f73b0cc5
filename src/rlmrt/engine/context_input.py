"""Turning what the user passes as `context` into a value for the sandbox, plus the
metadata the root model sees instead of the context itself."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.config import InputSettings
from rlmrt.engine.file_formats import Unreadable, reader_for
from rlmrt.errors import ContextError
from rlmrt.sandbox.kernel import Media

PREVIEW_CHARS = 400
LISTED_ITEMS = 20
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"})

# str, bytes, a list of str, a dict (a folder: path -> item), None; or what a file of a
# known format reads as (`rlmrt.engine.file_formats`): a list, a dict, an Image, ...
ContextValue = Any


@dataclass(frozen=True, slots=True)
class LoadedContext:
    value: ContextValue
    metadata: dict[str, Any]


# How paths are read: the `[input]` settings (`RLMConfig.input`).
ReadOptions = InputSettings


def load_context(context: Any, options: ReadOptions | None = None) -> LoadedContext:
    """Accepts str, bytes, a list of str, a dict, an Image or Audio (what a file of
    theirs reads as: code hands them to `rlm_query`), a Path, or a list of Paths; paths are
    read under `options` (default: the `[input]` settings' defaults)."""
    reader = _PathReader(options or ReadOptions())
    value = _to_value(context, reader)
    metadata = describe(value)
    if reader.skipped:
        metadata["skipped"] = reader.skipped
    return LoadedContext(value, metadata)


def _to_value(context: Any, reader: _PathReader) -> ContextValue:
    if context is None or isinstance(context, (str, dict, Media)):
        return context
    if isinstance(context, (bytes, bytearray)):
        try:
            return bytes(context).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(context)
    if isinstance(context, os.PathLike):
        return reader.read(Path(context))
    if isinstance(context, Sequence) and not isinstance(context, str):
        items = list(context)
        if all(isinstance(item, str) for item in items):
            return items
        if items and all(isinstance(item, os.PathLike) for item in items):
            merged: dict[str, Any] = {}
            for item in items:
                loaded = reader.read(Path(item), listed=True)
                if loaded is _SKIPPED:
                    continue
                if isinstance(loaded, dict) and Path(item).is_dir():
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
        "use str, bytes, a list of str, a dict, an Image or Audio, a Path or a list of Paths"
    )


_SKIPPED = object()  # what `_PathReader.read` returns for a listed file it skipped


class _PathReader:
    """Reads the paths of one context under one set of `ReadOptions`."""

    def __init__(self, options: ReadOptions) -> None:
        self.options = options
        self.skipped: list[dict[str, str]] = []
        self._failed: list[str] = []
        self._total = 0

    def read(self, path: Path, *, listed: bool = False) -> Any:
        """The value of the file or folder at `path`; with `listed` (one of several
        paths), a file that cannot be read is `_SKIPPED` under errors="skip"."""
        if not path.exists():
            raise ContextError(f"context path does not exist: {_shown(path)}")
        if path.is_dir():
            return self._read_folder(path)
        kind = _special_kind(path)
        if kind is not None:
            raise ContextError(
                f"context path is {kind}, not a regular file or a folder: {_shown(path)}"
            )
        data = self._read_bytes(path)
        if data is None:  # pragma: no cover - a single file is never skipped
            raise ContextError(f"cannot read context file {_shown(path)}")
        read = reader_for(path, data, self.options)
        if read is not None:
            try:
                return read(data, self.options.encoding)
            except Unreadable as exc:
                if listed and self.options.errors == "skip":
                    self.skipped.append({"path": _shown(path), "reason": str(exc)})
                    return _SKIPPED
                raise ContextError(f"cannot read context file {_shown(path)}: {exc}") from exc
        try:
            return data.decode(self.options.encoding)
        except UnicodeDecodeError as exc:
            raise ContextError(
                f"context file is not {self.options.encoding.upper()} text: {_shown(path)} (byte"
                f" {exc.start}); give its encoding (--encoding latin-1, or"
                " encoding = ... under [input] in rlm.toml), or pass its folder to load it as bytes"
            ) from exc

    def _read_folder(self, folder: Path) -> dict[str, Any]:
        root = folder.resolve()
        files: dict[str, Any] = {}
        for current, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(names):
                file = Path(current) / name
                relative = _shown(file.relative_to(folder))
                reason = self._refusal(file, root)
                if reason is not None:
                    self.skipped.append({"path": relative, "reason": reason})
                    continue
                data = self._read_bytes(file, relative=relative)
                if data is None:
                    continue
                read = reader_for(file, data, self.options)
                if read is not None:
                    try:
                        files[relative] = read(data, self.options.encoding)
                    except Unreadable as exc:
                        if self.options.errors == "skip":
                            self.skipped.append({"path": relative, "reason": str(exc)})
                        else:
                            self._failed.append(f"{relative}: {exc}")
                    continue
                try:
                    files[relative] = data.decode(self.options.encoding)
                except UnicodeDecodeError:
                    files[relative] = data  # a binary file stays available, as bytes
        if self._failed:
            raise ContextError(
                f"cannot read {len(self._failed)} file(s) of the context folder"
                f" {_shown(folder)}: "
                + "; ".join(self._failed)
                + " (errors='skip' loads the rest and lists these as skipped)"
            )
        if not files:
            what = "readable files" if self.skipped else "files"
            raise ContextError(f"context folder has no {what}: {_shown(folder)}")
        return files

    def _refusal(self, file: Path, root: Path) -> str | None:
        """Why a folder's entry is not read, or None to read it."""
        if file.is_symlink():
            try:
                target = file.resolve(strict=True)
            except (OSError, RuntimeError):
                return "a dangling or looping symlink"
            if not self.options.follow_symlinks and not target.is_relative_to(root):
                return "a symlink to outside the folder (follow_symlinks is off)"
        kind = _special_kind(file)
        return None if kind is None else f"{kind}, not a regular file"

    def _read_bytes(self, path: Path, *, relative: str | None = None) -> bytes | None:
        """The file's bytes within the caps; None when it is skipped (folders only)."""
        cap = self.options.max_file_bytes
        left = self.options.max_total_bytes - self._total
        try:
            with path.open("rb") as handle:
                data = handle.read(min(cap, left) + 1)
        except OSError as exc:
            problem = exc.strerror or str(exc)
            if relative is None:
                raise ContextError(f"cannot read context file {_shown(path)}: {problem}") from exc
            if self.options.errors == "skip":
                self.skipped.append({"path": relative, "reason": problem})
            else:
                self._failed.append(f"{relative}: {problem}")
            return None
        if len(data) > cap:
            raise ContextError(
                f"context file {_shown(path)} is over the {cap:,}-byte cap per file"
                " (max_file_bytes)"
            )
        if len(data) > left:
            raise ContextError(
                f"the context's files are over the {self.options.max_total_bytes:,}-byte"
                f" cap in total (max_total_bytes), at {_shown(path)}"
            )
        self._total += len(data)
        return data


def _special_kind(path: Path) -> str | None:
    """What a path that is not a regular file is ("a FIFO"), or None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"  # pragma: no cover - no other kinds on Linux


def _shown(path: Path) -> str:
    """A path as text that can always be printed and written (undecodable bytes of a
    file name escaped, not crashing the writer)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _length(item: Any) -> int:
    """A str's characters, bytes's or an Image's bytes, a list's or dict's items."""
    return len(item) if isinstance(item, (str, bytes, list, dict, Media)) else len(repr(item))


def describe(value: ContextValue) -> dict[str, Any]:
    """Type, total length, per-item lengths and a short preview: never the whole thing.
    Images and recordings are described by their metadata (`media`), never their bytes."""
    if value is None:
        return {"type": "none", "total_length": 0}
    meta: dict[str, Any] = {"type": type(value).__name__}
    if isinstance(value, Media):
        meta.update(type=value.kind, total_length=len(value), media={"context": value.describe()})
    elif isinstance(value, (str, bytes)):
        meta["total_length"] = len(value)
        meta["preview"] = _preview(value)
    elif isinstance(value, (list, dict)):
        # a parsed CSV may hold millions of rows: one list of lengths, nothing per item else
        items = list(value.values()) if isinstance(value, dict) else value
        keys = list(map(str, value)) if isinstance(value, dict) else None
        lengths = [_length(item) for item in items]
        meta.update(
            items=len(value),
            total_length=sum(lengths),
            item_lengths=(
                dict(zip(keys[:LISTED_ITEMS], lengths[:LISTED_ITEMS], strict=True))
                if keys is not None
                else lengths[:LISTED_ITEMS]
            ),
            preview=_preview(items[0]) if items else "",
        )
        if any(not isinstance(item, str) for item in items):
            # a folder's: per file; a list's (rows, pages): the kinds there are
            meta["item_types"] = (
                {
                    key: type(item).__name__
                    for key, item in itertools.islice(_named(keys, items), LISTED_ITEMS)
                }
                if keys is not None
                else sorted({type(item).__name__ for item in items})
            )
        media = {
            key: item.describe() for key, item in _named(keys, items) if isinstance(item, Media)
        }
        if media:
            meta["media"] = media
    else:  # a number or bool of a parsed JSON file
        meta["total_length"] = len(repr(value))
        meta["preview"] = _preview(value)
    if meta.get("items", 0) > LISTED_ITEMS:
        meta["items_not_listed"] = meta["items"] - LISTED_ITEMS
    return meta


def _named(keys: list[str] | None, items: list[Any]) -> Iterator[tuple[str, Any]]:
    """(key, item) of a dict's items, or (index as text, item) of a list's."""
    return zip(keys if keys is not None else map(str, itertools.count()), items, strict=False)


def _preview(item: Any) -> str:
    if isinstance(item, bytes):
        return repr(item[:PREVIEW_CHARS])
    text = item if isinstance(item, str) else repr(item)
    return text[:PREVIEW_CHARS]


def first_line(meta: Mapping[str, Any], max_chars: int = 160) -> str:
    """The first non-blank line of a context's preview (at most `max_chars`): a sample
    of the data's shape ("" when the preview is not text)."""
    preview = meta.get("preview")
    if not isinstance(preview, str):
        return ""
    for line in preview.splitlines():
        if line.strip():
            return line[:max_chars]
    return ""


def describe_for_prompt(meta: Mapping[str, Any]) -> str:
    lines = [f"Type: {meta['type']}", f"Total length: {meta['total_length']:,} characters"]
    if meta["type"] in ("image", "audio"):
        lines[1] = f"Total length: {meta['total_length']:,} bytes"
    if "items" in meta:
        lines.append(f"Items: {meta['items']:,}")
        lines.append(f"Item lengths: {meta['item_lengths']}")
        if "items_not_listed" in meta:
            lines.append(f"(lengths of {meta['items_not_listed']:,} more items not listed)")
    if "item_types" in meta:
        lines.append(f"Item types: {meta['item_types']}")
    media = meta.get("media", {})
    if media:
        described = list(media.items())
        shown = "; ".join(f"{key}: {what}" for key, what in described[:LISTED_ITEMS])
        more = (
            f"; and {len(described) - LISTED_ITEMS:,} more" if len(described) > LISTED_ITEMS else ""
        )
        lines.append(
            f"Images and recordings (Image/Audio objects: .format, .width/.height,"
            f" .duration_s, .data bytes; send them with llm_query(prompt, images=[...]) or"
            f" audio=[...]): {shown}{more}"
        )
    skipped = meta.get("skipped", [])
    if skipped:
        listed = "; ".join(f"{item['path']} ({item['reason']})" for item in skipped[:LISTED_ITEMS])
        more = f"; and {len(skipped) - LISTED_ITEMS:,} more" if len(skipped) > LISTED_ITEMS else ""
        lines.append(f"Files not loaded: {listed}{more}")
    if meta.get("preview"):
        lines.append(f"Preview (first {PREVIEW_CHARS} characters):\n{meta['preview']}")
    return "\n".join(lines)
