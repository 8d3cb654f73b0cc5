"""A batch's dataset: one JSON object per line, each a question over a context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.errors import ConfigError

FIELDS = frozenset({"id", "prompt", "question", "context", "context_path", "expected"})


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One task: `prompt` over an inline `context` or the file or folder at
    `context_path` (relative to the dataset's folder); `expected` scores the answer."""

    id: str
    prompt: str
    context: Any = None
    context_path: Path | None = None
    expected: str | None = None


def read_dataset(path: Path) -> list[BatchRecord]:
    """The records of a JSONL dataset, or a ConfigError naming the file, line and field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the dataset {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the dataset {path} is not UTF-8 text: {exc}") from exc
    records: list[BatchRecord] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _record(line, path, number)
        if record.id in seen:
            raise ConfigError(
                f"{path}:{number}: id {record.id!r} is already used on line {seen[record.id]}"
            )
        seen[record.id] = number
        records.append(record)
    if not records:
        raise ConfigError(f"the dataset {path} holds no records")
    return records


def _record(line: str, path: Path, number: int) -> BatchRecord:
    where = f"{path}:{number}"
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ConfigError(f"{where}: not a JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a record must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {_known()}")
    prompt = data.get("prompt", data.get("question"))
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(f"{where}: 'prompt' (or 'question') must be a non-empty string")
    if "context" in data and "context_path" in data:
        raise ConfigError(f"{where}: give 'context' or 'context_path', not both")
    context_path = data.get("context_path")
    if context_path is not None and not isinstance(context_path, str):
        raise ConfigError(f"{where}: 'context_path' must be a string")
    expected = data.get("expected")
    if expected is not None and not isinstance(expected, (str, int, float)):
        raise ConfigError(f"{where}: 'expected' must be a string or a number")
    record_id = data.get("id", str(number))
    if not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
        raise ConfigError(f"{where}: 'id' must be a string or an integer")
    return BatchRecord(
        id=str(record_id),
        prompt=prompt,
        context=data.get("context"),
        context_path=(path.parent / context_path) if context_path else None,
        expected=None if expected is None else str(expected),
    )


def _known() -> str:
    return ", ".join(sorted(FIELDS))
