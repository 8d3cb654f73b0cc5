"""Trajectory files: one JSON event per line, appended as each event happens.

A killed process leaves a readable file: every line is written and flushed whole, and
the reader skips a last line that was cut off mid-write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from rlmrt.errors import ConfigError, UsageError
from rlmrt.events import Event, event_from_dict

SUFFIX = ".jsonl"


class TrajectoryWriter:
    """An event handler that appends each event to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot write trajectories to {path.parent}: {exc.strerror or exc}"
            ) from exc

    def __call__(self, event: Event) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: Path) -> list[Event]:
    """All complete events of a trajectory file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read trajectory {path}: {exc.strerror or exc}") from exc
    return [event for event in map(parse_line, text.splitlines()) if event is not None]


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
