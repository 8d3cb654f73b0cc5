"""A batch's output: one JSON line per finished record, appended as each ends, so a
batch stopped at any point resumes where it was."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlmrt.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RecordResult:
    """How one record ended: its answer, or the error that stopped it (never both)."""

    id: str
    answer: str | None
    partial: bool
    stop_reason: str
    run_id: str | None = None
    error: str | None = None
    expected: str | None = None
    correct: bool | None = None  # None: no expected answer to score against
    usage: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    node: str | None = None  # where it ran (a Ray node id; None in-process)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordResult:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


class ResultFile:
    """The output file: the records it already holds, and appends that reach the disk
    one whole line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def done(self) -> dict[str, RecordResult]:
        """The records already in the file. A last line cut by a crash is dropped from
        the file (its record runs again); any other bad line is an error."""
        if not self.path.exists():
            return {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        kept: dict[str, RecordResult] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                result = RecordResult.from_dict(json.loads(line))
            except (ValueError, TypeError) as exc:
                if number == len(lines):  # the unfinished last line of a stopped batch
                    self._truncate(len(raw) - len(line))
                    break
                raise ConfigError(
                    f"{self.path}:{number}: not a batch result line ({exc}); is --out another file?"
                ) from exc
            kept[result.id] = result
        return kept

    def _truncate(self, size: int) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(size)

    def append(self, result: RecordResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(result.to_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
