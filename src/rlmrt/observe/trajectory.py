"""Trajectory files: one JSON event per line, appended as each event happens.

A killed process leaves a readable file: every line is written and flushed whole, and
the reader skips a last line that was cut off mid-write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rlmrt.errors import ConfigError, UsageError
from rlmrt.events import Event, event_from_dict
from rlmrt.observe.redact import redacted

SUFFIX = ".jsonl"


class TrajectoryWriter:
    """An event handler that appends each event to `path`, each of `secrets` replaced
    (see `redact`).

    Text that is not valid Unicode (a lone surrogate from a file name or the shell) is
    written as its JSON escape (`\\udcff`), which reads back as the same string."""

    def __init__(self, path: Path, secrets: tuple[str, ...] = ()) -> None:
        self.path = path
        self.secrets = secrets
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[bytes] | None = path.open("ab")
        except OSError as exc:
            raise ConfigError(
                f"cannot write trajectories to {path.parent}: {exc.strerror or exc}"
            ) from exc

    def __call__(self, event: Event) -> None:
        if self._file is None:
            return
        self._file.write(redacted(event_json(event), self.secrets).encode() + b"\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def event_json(event: Event) -> str:
    """An event as one line of JSON (its `to_dict` form): text that is not valid Unicode
    (a lone surrogate from a file name or the shell) is written as its JSON escape
    (`\\udcff`), which reads back as the same string."""
    line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


# Reading for display (`rlm logs`): a line longer than this is not read whole; its
# strings are kept up to KEPT_BYTES each, so memory stays bounded whatever a run wrote.
SKIM_LINE_BYTES = 1 << 20
KEPT_BYTES = 20_000


def read_events(path: Path) -> list[Event]:
    """All complete events of a trajectory file, whole (replays need every byte)."""
    return list(iter_events(path))


def iter_events(path: Path, *, skim: bool = False) -> Iterator[Event]:
    """The complete events of a trajectory file, one line at a time. With `skim`, the
    strings of a line over `SKIM_LINE_BYTES` are cut to `KEPT_BYTES` (for display)."""
    try:
        with path.open("rb") as handle:
            while True:
                if not skim:
                    line = handle.readline()
                else:
                    line = handle.readline(SKIM_LINE_BYTES)
                    if len(line) == SKIM_LINE_BYTES and not line.endswith(b"\n"):
                        line = _skimmed(line, handle)
                if not line:
                    return
                event = parse_line(line)
                if event is not None:
                    yield event
    except OSError as exc:
        raise UsageError(f"cannot read trajectory {path}: {exc.strerror or exc}") from exc


# inside a JSON string: plain bytes and whole escapes, up to a quote or a line's end
_STRING_PART = re.compile(rb'(?:[^"\\\n]+|\\u[0-9a-fA-F]{4}|\\[^u\n])*')
_PIECE_BYTES = 1 << 16  # what one regex match scans (its backtracking stack grows with it)
_OUTSIDE_PART = re.compile(rb'[^"\n]*')


def _skimmed(head: bytes, handle: IO[bytes]) -> bytes:
    """The line that starts with `head` and goes on in `handle`, read to its end in
    pieces, with each string cut to `KEPT_BYTES` (a note says how much was cut)."""
    out: list[bytes] = []
    pieces = _pieces(head, handle)
    chunk, carry = next(pieces, b""), b""
    in_string, kept, cut = False, 0, 0
    while chunk:
        chunk, carry = carry + chunk, b""
        i = 0
        while i < len(chunk):
            if not in_string:
                j = _OUTSIDE_PART.match(chunk, i).end()  # type: ignore[union-attr]
                out.append(chunk[i:j])
                if j == len(chunk):
                    break
                if chunk[j : j + 1] == b"\n":
                    return b"".join(out)
                out.append(b'"')
                in_string, kept, cut, i = True, 0, 0, j + 1
                continue
            j = _STRING_PART.match(chunk, i).end()  # type: ignore[union-attr]
            part = chunk[i:j]
            room = KEPT_BYTES - kept
            if len(part) > room:
                whole = _STRING_PART.match(part[:room]).end()  # type: ignore[union-attr]
                while whole and part[whole] & 0xC0 == 0x80:  # not inside a UTF-8 character
                    whole -= 1
                out.append(part[:whole])
                kept += whole
                cut += len(part) - whole
            else:
                out.append(part)
                kept += len(part)
            end = chunk[j : j + 1]
            if end == b'"':
                if cut:
                    out.append(f" [... {cut:,} bytes not read]".encode())
                out.append(b'"')
                in_string, i = False, j + 1
            elif end == b"\n":
                return b"".join(out)  # cut off mid-string: parse_line drops it
            else:
                carry = chunk[j:]  # an escape split by the chunk's end
                if len(carry) > 6:  # not an escape: the line is not JSON
                    return b""
                break
        chunk = next(pieces, b"")
    return b"".join(out)


def _pieces(head: bytes, handle: IO[bytes]) -> Iterator[bytes]:
    """`head`, then the rest of its line in `handle`, in pieces of `_PIECE_BYTES`."""
    for start in range(0, len(head), _PIECE_BYTES):
        yield head[start : start + _PIECE_BYTES]
    while piece := handle.readline(_PIECE_BYTES):
        yield piece
        if piece.endswith(b"\n"):
            return


def parse_line(line: str | bytes) -> Event | None:
    """One line of a trajectory as an event; None for a blank line, a line cut off by a
    killed process, or an event kind from a newer rlmrt (not ours to interpret)."""
    try:
        data = json.loads(line)
        return event_from_dict(data) if isinstance(data, dict) else None
    except (ValueError, TypeError):  # json.JSONDecodeError is a ValueError
        return None


@dataclass(frozen=True, slots=True)
class RunFile:
    run_id: str
    path: Path


def list_runs(folder: Path) -> list[RunFile]:
    """Trajectory files in `folder`, newest first (run ids start with a timestamp)."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.name, reverse=True)
    return [RunFile(p.name[: -len(SUFFIX)], p) for p in files]


def find_run(folder: Path, run_id: str) -> RunFile:
    """The run whose id is `run_id`, or the one run whose id starts or ends with it
    (a unique prefix such as the date, or the random suffix)."""
    runs = list_runs(folder)
    exact = [r for r in runs if r.run_id == run_id]
    if exact:
        return exact[0]
    matches = [r for r in runs if r.run_id.startswith(run_id) or r.run_id.endswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no run {run_id!r} in {folder}")
    raise UsageError(f"run id {run_id!r} is ambiguous: {', '.join(r.run_id for r in matches[:5])}")
