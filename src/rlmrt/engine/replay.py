"""Replaying a recorded run: same prompt, same context, the recorded model replies.

The trajectory holds every model reply and every code output but not the context
(only its metadata), so the caller passes the context again. `replay_run` re-executes
the run's code in a fresh sandbox with `ReplayClient` as the model and reports each
code execution whose stdout or error differs from the recording.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlmrt.config import RLMConfig, config_with, load_config
from rlmrt.engine.context_input import load_context
from rlmrt.engine.rlm import RLM, RunResult
from rlmrt.errors import UsageError
from rlmrt.events import CodeExecuted, Event, RunFinished, RunStarted
from rlmrt.llm.replay import ReplayClient
from rlmrt.observe.trajectory import read_events

COMPARED = ("stdout", "error")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecDifference:
    """One code execution whose output differs (`field` is "stdout", "error" or
    "missing" when one side has an execution the other has not)."""

    prompt: str  # of the run node the code ran in
    depth: int
    index: int  # 1-based, among that node's executions
    code: str
    field: str
    recorded: str | None
    replayed: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    run_id: str  # of the recording
    prompt: str
    recorded_answer: str | None
    replayed_answer: str | None
    executions: int  # recorded code executions compared
    differences: list[ExecDifference]
    result: RunResult

    @property
    def identical(self) -> bool:
        return not self.differences and self.recorded_answer == self.replayed_answer


@dataclass(frozen=True, slots=True)
class Recording:
    """The parts of a trajectory a replay needs."""

    events: list[Event]
    root: RunStarted
    finished: RunFinished | None

    @classmethod
    def read(cls, path: Path) -> Recording:
        events = read_events(path)
        roots = [e for e in events if isinstance(e, RunStarted) and e.parent_call_id is None]
        if not roots:
            raise UsageError(f"{path} holds no recorded run (no run_started event)")
        root = roots[0]
        finished = next(
            (e for e in events if isinstance(e, RunFinished) and e.call_id == root.call_id), None
        )
        return cls(events, root, finished)

    def check_context(self, context: Any) -> Any:
        """The context loaded, or a UsageError when it is not the recorded one."""
        loaded = load_context(context)
        recorded = self.root.context_metadata
        given = loaded.metadata
        if (recorded.get("type"), recorded.get("total_length")) != (
            given.get("type"),
            given.get("total_length"),
        ):
            raise UsageError(
                "the context does not match the recording: recorded "
                f"{_describe(recorded)}, given {_describe(given)}; pass the run's context "
                "with --context (or context=)"
            )
        return loaded.value

    def max_depth(self) -> int:
        if self.root.max_depth is not None:
            return self.root.max_depth
        return max(e.depth for e in self.events if isinstance(e, RunStarted))


def replay_run(path: Path, context: Any = None, *, config: RLMConfig | None = None) -> ReplayReport:
    """Re-run the recorded run at `path` over `context` with the recorded replies."""
    recording = Recording.read(path)
    value = recording.check_context(context)
    base = config or load_config()
    settings = config_with(
        base,
        model=recording.root.model,
        sandbox=recording.root.sandbox,
        max_depth=recording.max_depth(),
    ).model_copy(update={"save_trajectory": False})
    replayed: list[Event] = []
    rlm = RLM(config=settings, client=ReplayClient(recording.events))
    rlm.subscribe(replayed.append)
    try:
        result = rlm.completion(recording.root.prompt, value)
    finally:
        rlm.close()
    recorded_execs = _executions(recording.events)
    differences = _compare(recorded_execs, _executions(replayed))
    return ReplayReport(
        run_id=recording.root.run_id,
        prompt=recording.root.prompt,
        recorded_answer=recording.finished.answer if recording.finished else None,
        replayed_answer=result.answer,
        executions=sum(len(v) for v in recorded_execs.values()),
        differences=differences,
        result=result,
    )


NodeKey = tuple[int, str, int]  # depth, prompt, n-th node with that depth and prompt


def _executions(events: Sequence[Event]) -> dict[NodeKey, list[CodeExecuted]]:
    """Code executions per run node; nodes are named by what they are, not their ids
    (ids depend on the order in which concurrent sub-calls started)."""
    seen: dict[tuple[int, str], int] = defaultdict(int)
    keys: dict[str, NodeKey] = {}
    for event in events:
        if isinstance(event, RunStarted):
            pair = (event.depth, event.prompt)
            keys[event.call_id] = (*pair, seen[pair])
            seen[pair] += 1
    found: dict[NodeKey, list[CodeExecuted]] = defaultdict(list)
    for event in events:
        if isinstance(event, CodeExecuted) and event.parent_call_id in keys:
            found[keys[event.parent_call_id]].append(event)
    return found


def _compare(
    recorded: dict[NodeKey, list[CodeExecuted]], replayed: dict[NodeKey, list[CodeExecuted]]
) -> list[ExecDifference]:
    out: list[ExecDifference] = []
    for key in sorted(set(recorded) | set(replayed), key=lambda k: (k[0], k[2], k[1])):
        depth, prompt, _ = key
        pairs = itertools.zip_longest(recorded.get(key, []), replayed.get(key, []))
        for index, (old, new) in enumerate(pairs, start=1):
            if old is None or new is None:
                out.append(
                    ExecDifference(
                        prompt=prompt,
                        depth=depth,
                        index=index,
                        code=(old or new).code,
                        field="missing",
                        recorded=old.code if old else None,
                        replayed=new.code if new else None,
                    )
                )
                continue
            for name in COMPARED:
                before, after = getattr(old, name), getattr(new, name)
                if before != after:
                    out.append(
                        ExecDifference(
                            prompt=prompt,
                            depth=depth,
                            index=index,
                            code=old.code,
                            field=name,
                            recorded=before,
                            replayed=after,
                        )
                    )
    return out


def _describe(meta: dict[str, Any]) -> str:
    length = meta.get("total_length")
    size = f"{length:,} characters" if isinstance(length, int) else "unknown length"
    return f"{meta.get('type', '?')} of {size}"
