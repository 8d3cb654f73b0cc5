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
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rlmrt._loop import LoopThread
from rlmrt.config import RLMConfig, config_with, load_config
from rlmrt.engine.context_input import ReadOptions, load_context
from rlmrt.engine.rlm import RLM, RunResult
from rlmrt.errors import UsageError
from rlmrt.events import CodeExecuted, Event, RunFinished, RunStarted
from rlmrt.llm.replay import ReplayClient
from rlmrt.observe.summary import read_summary
from rlmrt.observe.trajectory import SUFFIX

COMPARED = ("stdout", "error")
T = TypeVar("T")


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
        events, summary = read_summary(path)
        if summary.root is None:
            raise UsageError(f"{path} holds no recorded run (no run_started event)")
        return cls(events, summary.root, summary.finished, path)

    def check_context(self, context: Any, options: ReadOptions | None = None) -> Any:
        """The context loaded (paths under `options`), or a UsageError when it is not
        the recorded one."""
        return _checked(context, self.root.context_metadata, "the context", "--context", options)

    def check_session_contexts(
        self, given: Sequence[Any], options: ReadOptions | None = None
    ) -> dict[str, Any]:
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
            name: _checked(value, contexts[name], f"`{name}`", "--session-context", options)
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
    settings = config_with(
        config or load_config(), model=recording.root.model, sandbox=recording.root.sandbox
    )
    value = recording.check_context(context, settings.input)
    added = recording.check_session_contexts(session_contexts, settings.input)
    chain = [*earlier, recording]
    replayed: dict[str, list[Event]] = defaultdict(list)
    result = _on_own_loop(
        _run_chain(
            [_replaying(rec, settings) for rec in chain],
            chain,
            value,
            added,
            sink=lambda rec, events: replayed[rec.root.run_id].extend(events),
        )
    )
    executions = 0
    differences: list[ExecDifference] = []
    for rec in chain:
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
    session's earlier completions; only the run itself goes to `model` (a new run with
    these settings, saved as its own)."""
    recording = Recording.read(path)
    earlier = recording.earlier_runs()
    settings = config_with(config or load_config(), model=model)
    value = recording.check_context(context, settings.input)
    added = recording.check_session_contexts(session_contexts, settings.input)
    rlms = [*(_replaying(rec, settings) for rec in earlier), RLM(config=settings)]
    return _on_own_loop(
        _run_chain(
            rlms,
            [*earlier, recording],
            value,
            added,
            sink=lambda rec, events: None,
            rerun_last=True,
        )
    )


def _replaying(recording: Recording, settings: RLMConfig) -> RLM:
    """An RLM answered by `recording`'s replies, recursing as deep as it did, saving no
    trajectory (building it starts nothing)."""
    quiet = config_with(settings, max_depth=recording.max_depth(), save_trajectory=False)
    client = ReplayClient(recording.events)
    rlm = RLM(config=quiet, client=client)
    rlm.subscribe(client.observe)
    return rlm


async def _run_chain(
    rlms: list[RLM],
    chain: list[Recording],
    first: Any,
    added: dict[str, Any],
    *,
    sink: Callable[[Recording, list[Event]], None],
    rerun_last: bool = False,
) -> RunResult:
    """Run the chain's prompts in order, each through its RLM's engine: a run of its
    own, or one session's completions (replayed ones keep their recorded run ids, as
    code may have seen them in `history`; a re-run last run, `rerun_last`, is a new
    run). The RLMs are closed at the end."""
    result: RunResult | None = None
    try:
        if chain[-1].session is None:
            events: list[Event] = []
            rec = chain[-1]
            fresh = rerun_last
            result = await rlms[-1].engine.run(
                rec.root.prompt,
                load_context(first, rlms[-1].config.input),
                on_event=events.append,
                run_id=None if fresh else rec.root.run_id,
            )
            sink(rec, events)
            return result
        async with rlms[0].session(context=first) as session:
            for rlm, rec in zip(rlms, chain, strict=True):
                name = (rec.session or {}).get("added_context")
                events = []
                fresh = rerun_last and rec is chain[-1]
                result = await session.arun_turn(
                    rlm.engine,
                    rec.root.prompt,
                    added[name] if name else None,
                    on_event=events.append,
                    run_id=None if fresh else rec.root.run_id,
                )
                sink(rec, events)
    finally:
        for rlm in rlms:
            await rlm.aclose()
    assert result is not None  # the chain ends with the run itself
    return result


def _on_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """`work` run to its end on a loop of its own (the caller may be in a loop)."""
    loop = LoopThread("rlmrt-replay")
    try:
        return loop.run(work)
    finally:
        loop.stop()


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


def _checked(
    context: Any, recorded: dict[str, Any], what: str, option: str, options: ReadOptions | None
) -> Any:
    """`context` loaded, or a UsageError when its type or length is not the recorded."""
    loaded = load_context(context, options)
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
