"""Events of runs made by other processes, read as their trajectory files grow.

`rlm metrics serve` counts the runs of every `rlm` process on the machine this way:
each new trajectory file gets its own handler (a `TreeMetrics`), fed the complete lines
appended since the last poll. Files that existed before the follower started are left
alone: their runs' starts were not seen, so their in-flight counts would be wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rlmrt.events import RunFinished
from rlmrt.observe.trajectory import SUFFIX, parse_line

if TYPE_CHECKING:
    from rlmrt.observe.watchers import RunWatcher


@dataclass(slots=True)
class _Followed:
    handler: RunWatcher
    offset: int = 0
    done: bool = False


class TrajectoryFollower:
    """`folders` maps a project label to its trajectory folder; `watch(project)` makes
    the handler of one run file."""

    def __init__(self, folders: Mapping[str, Path], watch: Callable[[str], RunWatcher]) -> None:
        self._folders = dict(folders)
        self._watch = watch
        self._files: dict[Path, _Followed | None] = {
            path: None for path in self._all_files()
        }  # None: there before we started, not followed

    def _all_files(self) -> list[Path]:
        return [
            path
            for folder in self._folders.values()
            if folder.is_dir()
            for path in sorted(folder.glob(f"*{SUFFIX}"))
        ]

    def poll(self) -> int:
        """Feed what was appended since the last poll; returns the number of events."""
        count = 0
        for project, folder in self._folders.items():
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                if path not in self._files:
                    self._files[path] = _Followed(self._watch(project))
                followed = self._files[path]
                if followed is not None and not followed.done:
                    count += self._read(path, followed)
        return count

    def _read(self, path: Path, followed: _Followed) -> int:
        try:
            with path.open("rb") as file:
                file.seek(followed.offset)
                data = file.read()
        except OSError:
            return 0  # removed meanwhile: nothing more to read
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
        followed.offset += end
        count = 0
        for line in data[:end].splitlines():
            event = parse_line(line)
            if event is None:
                continue
            count += 1
            followed.handler(event)
            if isinstance(event, RunFinished) and event.parent_call_id is None:
                followed.handler.close()
                followed.done = True
        return count

    def close(self) -> None:
        for followed in self._files.values():
            if followed is not None and not followed.done:
                followed.handler.close()
