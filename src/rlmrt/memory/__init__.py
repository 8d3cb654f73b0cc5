"""Memory: what a project's runs remember and recall, the feedback given on runs, and
the notes learned from it. See `store.py`."""

from __future__ import annotations

from rlmrt.config import RLMConfig
from rlmrt.memory.store import KINDS, Feedback, MemoryItem, MemoryKind, MemoryStore, Verdict
from rlmrt.observe.trajectory import find_run, iter_events

__all__ = [
    "KINDS",
    "Feedback",
    "MemoryItem",
    "MemoryKind",
    "MemoryStore",
    "Verdict",
    "give_feedback",
    "open_memory",
]


def open_memory(config: RLMConfig) -> MemoryStore:
    """The memory store of the settings' project (or of this machine)."""
    return MemoryStore(config.memory.path)


def give_feedback(
    config: RLMConfig,
    run_id: str,
    verdict: Verdict,
    *,
    note: str | None = None,
    expected: str | None = None,
) -> Feedback:
    """Judge a recorded run good or bad; its question and answer are read from its
    trajectory (a unique prefix or suffix of the run id finds it)."""
    from rlmrt.events import RunFinished, RunStarted

    run = find_run(config.trajectory.dir, run_id)
    prompt = answer = None
    for event in iter_events(run.path):
        if event.call_id != run.run_id:
            continue  # the root's own start and finish; children have their own ids
        if isinstance(event, RunStarted):
            prompt = event.prompt
        elif isinstance(event, RunFinished):
            answer = event.answer
    store = open_memory(config)
    try:
        return store.give_feedback(
            Feedback(
                run_id=run.run_id,
                verdict=verdict,
                note=note,
                expected=expected,
                prompt=prompt,
                answer=answer,
            )
        )
    finally:
        store.close()
