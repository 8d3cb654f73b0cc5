"""The runs of a trajectory folder, and one trajectory followed as it is written.

A `Follower` reads only what was appended since its last poll (whole lines only: a line
still being written waits for the next poll) and feeds the events to a `CallTree`, the
same model `rlm logs` and the live view of `rlm run` use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rlmrt.errors import UsageError
from rlmrt.events import Event
from rlmrt.observe import format as fmt
from rlmrt.observe.calltree import CallTree
from rlmrt.observe.summary import RunSummary, summarize
from rlmrt.observe.trajectory import list_runs, parse_line

MAX_RUNS = 500  # runs offered by the picker (newest first)


@dataclass(frozen=True, slots=True)
class RunChoice:
    """One entry of the run picker."""

    run_id: str
    path: Path
    status: str  # "final", "partial", "error", "unfinished", "empty" or "unreadable"
    prompt: str
    partial: bool
    problem: str | None = None  # why the file cannot be shown

    @property
    def label(self) -> str:
        flag = " · partial" if self.partial else ""
        prompt = f" · {fmt.preview(self.prompt, 60)}" if self.prompt else ""
        return f"{self.run_id} · {self.status}{flag}{prompt}"


def list_choices(folder: Path, *, limit: int = MAX_RUNS) -> list[RunChoice]:
    """The runs of `folder`, newest first, each summarised from its trajectory."""
    return [choice_for(f.run_id, f.path) for f in list_runs(folder)[:limit]]


def choice_for(run_id: str, path: Path) -> RunChoice:
    follower = Follower(path)
    try:
        follower.poll()
    except UsageError as exc:
        return RunChoice(run_id, path, "unreadable", "", False, problem=str(exc))
    if follower.tree.root is None:
        problem = f"{path} holds no run yet (no run_started event)"
        return RunChoice(run_id, path, "empty", "", False, problem=problem)
    summary = follower.summary()
    return RunChoice(run_id, path, summary.status, summary.prompt, summary.status == "partial")


@dataclass
class Follower:
    """The call tree of one trajectory file, brought up to date by `poll()`."""

    path: Path
    tree: CallTree = field(default_factory=CallTree)
    events: list[Event] = field(default_factory=list)
    offset: int = 0

    def poll(self) -> int:
        """Read what was appended since the last poll; return how many events arrived.

        A file that shrank was replaced: it is read again from the start. Raises
        `UsageError` when the file cannot be read."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < self.offset:
                    self._restart()
                handle.seek(self.offset)
                data = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read trajectory {self.path}: {exc.strerror or exc}") from exc
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        arrived = 0
        for line in data[:complete].splitlines():
            event = parse_line(line)
            if event is not None:
                self.events.append(event)
                self.tree(event)
                arrived += 1
        return arrived

    def _restart(self) -> None:
        self.tree = CallTree()
        self.events = []
        self.offset = 0

    @property
    def finished(self) -> bool:
        """True once the root run has finished (its `run_finished` event is in)."""
        root = self.tree.root
        return root is not None and root.stop_reason is not None

    def summary(self) -> RunSummary:
        run_id = self.tree.root.id if self.tree.root else self.path.stem
        return summarize(self.events, run_id=run_id, path=self.path)
