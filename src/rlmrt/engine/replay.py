"""Replaying a recorded run: same prompt, same context, the recorded model replies.

The trajectory holds every model reply and every code output but not the context
(only its metadata), so the caller passes the context again. `replay_run` re-executes
the run's code in a fresh sandbox with `ReplayClient` as the model and reports each
code execution whose stdout or error differs from the recording.

A run made in a session started with the REPL state of the session's earlier
completions. Its `RunStarted.session` names them; their trajectories (in the same
folder) are replayed first, in one session with the recorded run ids, so the variables,
`context_1`... and `history` are what the run saw. Their outputs are compared too.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlmrt.config import RLMConfig, config_with, load_config
from rlmrt.engine.context_input import load_context
from rlmrt.engine.rlm import RLM, RunResult
from rlmrt.errors import UsageError
from rlmrt.events import CodeExecuted, Event, RunFinished, RunStarted
from rlmrt.llm.base import ModelClient
from rlmrt.llm.replay import ReplayClient
from rlmrt.observe.trajectory import SUFFIX, read_events

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
    run_id: str = ""  # the recorded run (a session's earlier run, or the one replayed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayReport:
    run_id: str  # of the recording
    prompt: str
    recorded_answer: str | None
    replayed_answer: str | None
    executions: int  # recorded code executions compared
    differences: list[ExecDifference]
    result: RunResult
    session_runs: list[str] = field(default_factory=list)  # earlier runs replayed first

    @property
    def identical(self) -> bool:
        return not self.differences and self.recorded_answer == self.replayed_answer


@dataclass(frozen=True, slots=True)
class Recording:
    """The parts of a trajectory a replay needs."""

    events: list[Event]
    root: RunStarted
    finished: RunFinished | None
    path: Path

    @property
    def session(self) -> dict[str, Any] | None:
        """Where the run sits in its session (None for a run of its own)."""
        return self.root.session

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
        return cls(events, root, finished, path)

    def check_context(self, context: Any) -> Any:
        """The context loaded, or a UsageError when it is not the recorded one."""
        return _checked(context, self.root.context_metadata, "the context", "--context")

    def check_session_contexts(self, given: Sequence[Any]) -> dict[str, Any]:
        """The contexts a session added before or in this run (`context_1`...), loaded
        and checked against the recording, by name."""
        names = [n for n in (self.session or {}).get("contexts", {}) if n != "context"]
        if len(given) > len(names):
            raise UsageError(
                f"{len(given)} session context(s) given, but the run's session had "
                f"{len(names)} beyond `context`"
            )
        if len(given) < len(names):
            missing = names[len(given)]
            meta = self.session["contexts"][missing] if self.session else {}
            raise UsageError(
                f"the run's session also had `{missing}` ({_describe(meta)}): pass the "
                "session's later contexts in order with --session-context (or "
                "session_contexts=)"
            )
        contexts = self.session["contexts"] if self.session else {}
        return {
            name: _checked(value, contexts[name], f"`{name}`", "--session-context")
            for name, value in zip(names, given, strict=True)
        }

    def earlier_runs(self) -> list[Recording]:
        """The recordings of the session's earlier completions, from this file's folder."""
        if self.session is None:
            return []
        previous = [str(r) for r in self.session.get("previous_runs", [])]
        found: list[Recording] = []
        for number, run_id in enumerate(previous, start=1):
            path = self.path.parent / f"{run_id}{SUFFIX}"
            if not path.is_file():
                raise UsageError(
                    f"run {self.root.run_id} is completion {len(previous) + 1} of a session; "
                    f"replaying it needs the session's completion {number}, run {run_id}, "
                    f"whose trajectory is missing from {self.path.parent}"
                )
            earlier = Recording.read(path)
            if (earlier.session or {}).get("id") != self.session.get("id"):
                raise UsageError(f"{path} is not a run of the session of {self.root.run_id}")
            found.append(earlier)
        return found

    def max_depth(self) -> int:
        if self.root.max_depth is not None:
            return self.root.max_depth
        return max(e.depth for e in self.events if isinstance(e, RunStarted))


def replay_run(
    path: Path,
    context: Any = None,
    *,
    config: RLMConfig | None = None,
    session_contexts: Sequence[Any] = (),
) -> ReplayReport:
    """Re-run the recorded run at `path` over `context` with the recorded replies.

    For a run made in a session, `session_contexts` are the contexts its session's
    completions added (`context_1`, `context_2`, ... in order)."""
    recording = Recording.read(path)
    earlier = recording.earlier_runs()
    value = recording.check_context(context)
    added = recording.check_session_contexts(session_contexts)
    base = config or load_config()
    settings = config_with(
        base,
        model=recording.root.model,
        sandbox=recording.root.sandbox,
        max_depth=recording.max_depth(),
        save_trajectory=False,
    )
    replayed: dict[str, list[Event]] = defaultdict(list)
    rlm = RLM(config=settings, client=ReplayClient(recording.events))
    try:
        if recording.session is None:
            rlm.subscribe(replayed[recording.root.run_id].append)
            result = rlm.completion(recording.root.prompt, value)
        else:
            result = _replay_session(
                rlm,
                [*earlier, recording],
                value,
                added,
                client=lambda rec: ReplayClient(rec.events),
                sink=lambda rec, events: replayed[rec.root.run_id].extend(events),
            )
    finally:
        rlm.close()
    executions = 0
    differences: list[ExecDifference] = []
    for rec in [*earlier, recording]:
        recorded_execs = _executions(rec.events)
        executions += sum(len(v) for v in recorded_execs.values())
        found = _compare(recorded_execs, _executions(replayed[rec.root.run_id]))
        differences += [dataclasses.replace(d, run_id=rec.root.run_id) for d in found]
    return ReplayReport(
        run_id=recording.root.run_id,
        prompt=recording.root.prompt,
        recorded_answer=recording.finished.answer if recording.finished else None,
        replayed_answer=result.answer,
        executions=executions,
        differences=differences,
        result=result,
        session_runs=[e.root.run_id for e in earlier],
    )


def rerun_on_model(
    path: Path,
    context: Any,
    *,
    model: str,
    config: RLMConfig | None = None,
    session_contexts: Sequence[Any] = (),
) -> RunResult:
    """The recorded run's prompt and context, run for real on `model`.

    A session's run first gets its REPL state back from the recorded replies of the
    session's earlier completions; only the run itself goes to `model`."""
    recording = Recording.read(path)
    earlier = recording.earlier_runs()
    value = recording.check_context(context)
    added = recording.check_session_contexts(session_contexts)
    settings = config_with(config or load_config(), model=model)
    rlm = RLM(config=settings)
    real = rlm.client
    try:
        if recording.session is None:
            return rlm.completion(recording.root.prompt, value)
        return _replay_session(
            rlm,
            [*earlier, recording],
            value,
            added,
            client=lambda rec: real if rec is recording else ReplayClient(rec.events),
            sink=lambda rec, events: None,
            rerun_last=True,
        )
    finally:
        rlm.client = real
        rlm.close()


def _replay_session(
    rlm: RLM,
    chain: list[Recording],
    first: Any,
    added: dict[str, Any],
    *,
    client: Callable[[Recording], ModelClient],
    sink: Callable[[Recording, list[Event]], None],
    rerun_last: bool = False,
) -> RunResult:
    """Run the chain's prompts in order in one session; each run answered by
    `client(recording)`. Replayed runs keep their recorded ids (code may have seen
    them in `history`) and write no trajectory; a re-run last run (`rerun_last`) is a
    new run with the RLM's own settings."""
    settings = rlm.config
    quiet = config_with(settings, save_trajectory=False)

    async def run_all() -> RunResult:
        result: RunResult | None = None
        async with rlm.session(context=first) as session:
            for rec in chain:
                fresh = rerun_last and rec is chain[-1]
                rlm.client = client(rec)
                # a replayed run recurses as deep as it did when recorded
                rlm.config = settings if fresh else config_with(quiet, max_depth=rec.max_depth())
                place = rec.session or {}
                name = place.get("added_context")
                events: list[Event] = []
                result = await session._complete(
                    rec.root.prompt,
                    added[name] if name else None,
                    on_event=events.append,
                    stream_root=False,
                    run_id=None if fresh else rec.root.run_id,
                )
                sink(rec, events)
        assert result is not None  # the chain ends with the run itself
        return result

    try:
        return rlm._sync.run(run_all())
    finally:
        rlm.config = settings


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


def _checked(context: Any, recorded: dict[str, Any], what: str, option: str) -> Any:
    """`context` loaded, or a UsageError when its type or length is not the recorded."""
    loaded = load_context(context)
    given = loaded.metadata
    if (recorded.get("type"), recorded.get("total_length")) != (
        given.get("type"),
        given.get("total_length"),
    ):
        raise UsageError(
            f"{what} does not match the recording: recorded {_describe(recorded)}, given "
            f"{_describe(given)}; pass the run's context with {option} (or "
            f"{option.lstrip('-').replace('-', '_')}=)"
        )
    return loaded.value


def _describe(meta: dict[str, Any]) -> str:
    length = meta.get("total_length")
    size = f"{length:,} characters" if isinstance(length, int) else "unknown length"
    return f"{meta.get('type', '?')} of {size}"
