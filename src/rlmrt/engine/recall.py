"""What a root run's first prompt takes from the project's memory: the pinned items and
the learned lessons most like the question, each capped, each recorded as an event."""

from __future__ import annotations

from dataclasses import dataclass

from rlmrt.config import MemorySettings
from rlmrt.context.base import estimate_tokens
from rlmrt.memory import MemoryItem
from rlmrt.memory.backend import MemoryBackend

PINNED_HEADING = "Remembered for this project (pinned):"
LESSONS_HEADING = (
    "Lessons learned from earlier runs judged good or bad (use what fits this question):"
)


@dataclass(frozen=True, slots=True)
class Recalled:
    """The items a first prompt shows, and the note that shows them ("" for none)."""

    pinned: list[MemoryItem]
    lessons: list[MemoryItem]

    @property
    def note(self) -> str:
        parts = []
        if self.pinned:
            parts.append(_block(PINNED_HEADING, self.pinned))
        if self.lessons:
            parts.append(_block(LESSONS_HEADING, self.lessons))
        return "\n\n".join(parts)


async def recall_for_prompt(
    settings: MemorySettings, memory: MemoryBackend, question: str, *, data_line: str = ""
) -> Recalled:
    """The pinned items of `memory` (oldest first) within `pinned_max_tokens`, and with
    `learning` on, up to `learned_max_notes` lessons ranked by the question and the
    context's shape (`data_line`, its first line: a lesson names the data it was
    learned on, so one from data like this ranks higher). An absent store is read as
    empty and not created."""
    wanted = settings.learned_max_notes if settings.learning and question.strip() else 0
    query = f"{question}\n{data_line}" if data_line.strip() else question
    pinned, lessons = await memory.for_prompt(query, lessons=wanted)
    return Recalled(_within(pinned, settings.pinned_max_tokens), lessons)


def _within(items: list[MemoryItem], max_tokens: int) -> list[MemoryItem]:
    kept, used = [], 0
    for item in items:
        used += estimate_tokens(item.text)
        if used > max_tokens:
            break
        kept.append(item)
    return kept


def _block(heading: str, items: list[MemoryItem]) -> str:
    return heading + "\n" + "\n".join(f"- {item.text}" for item in items)
